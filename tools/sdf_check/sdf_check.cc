// sdf_check: load SDF worlds/models with libsdformat (the parser Gazebo itself uses) and print every error.
// Build: g++ -std=c++17 sdf_check.cc $(pkg-config --cflags --libs sdformat12) -o sdf_check
// Usage: sdf_check MODEL_PATH FILE.sdf [FILE.sdf ...]; model:// URIs resolve under MODEL_PATH.
// Exit code: 0 when every file loads with zero errors, 1 otherwise.
#include <iostream>
#include <sdf/sdf.hh>

int main(int argc, char **argv) {
  if (argc < 3) {
    std::cerr << "usage: sdf_check MODEL_PATH FILE.sdf [FILE.sdf ...]\n";
    return 2;
  }
  sdf::ParserConfig config;
  config.AddURIPath("model://", argv[1]);
  int bad = 0;
  for (int i = 2; i < argc; ++i) {
    sdf::Root root;
    sdf::Errors errors = root.Load(argv[i], config);
    std::size_t models = root.Model() ? 1 : 0;
    for (uint64_t w = 0; w < root.WorldCount(); ++w) models += root.WorldByIndex(w)->ModelCount();
    std::cout << argv[i] << ": SDF " << root.Version() << ", " << root.WorldCount() << " world(s), " << models
              << " model(s), " << errors.size() << " error(s)\n";
    for (const auto &e : errors) std::cout << "  " << e.Message() << "\n";
    bad += errors.empty() ? 0 : 1;
  }
  return bad ? 1 : 0;
}
