"""Install the ROS way: colcon finds every package, every rosdep key exists, declared deps match imports."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import SHARED_DATA

DEP_TAGS = ("depend", "build_depend", "exec_depend", "test_depend", "buildtool_depend", "build_export_depend")
PACKAGE_XMLS = ("package.xml", "interfaces/agricare_interfaces/package.xml")
OWN = {"agricare", "agricare_interfaces"}
# imported module -> rosdep key (ROS packages import under their own name)
PY_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "serial": "python3-serial",
           "shapely": "python3-shapely", "pyproj": "python3-pyproj", "matplotlib": "python3-matplotlib",
           "transforms3d": "python3-transforms3d", "pymodbus": "python3-pymodbus", "pynmea2": "python3-pynmea2",
           "mcap": "mcap-ros2-support", "mcap_ros2": "mcap-ros2-support", "cryptography": "python3-cryptography",
           "fastapi": "python3-fastapi", "uvicorn": "python3-uvicorn", "sqlalchemy": "python3-sqlalchemy",
           "httpx": "python3-httpx", "websockets": "python3-websockets", "lxml": "python3-lxml",
           "fiona": "python3-fiona", "fastkml": "python3-fastkml", "rasterio": "python3-rasterio",
           "pytest": "python3-pytest", "hypothesis": "python3-hypothesis"}
# imported modules without a rosdep key: installed from requirements.txt (pip), said so in README
PIP_ONLY = {"ortools", "segno", "foxglove", "argon2", "shapefile", "selenium", "alembic", "jinja2", "multipart",
            "starlette", "pydantic"}


def _deps(path):
    root = ET.parse(path).getroot()
    return {(e.text or "").strip(): e.get("condition") for tag in DEP_TAGS for e in root.iter(tag)}


def _imports(paths):
    out = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                out.setdefault(n.split(".")[0], path.name)
    return out


def test_colcon_lists_every_package_with_the_documented_command(repo_root):
    colcon = shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")
    # the documented command (README: install on a ROS 2 machine)
    out = subprocess.run([colcon, "list", "--base-paths", ".", "interfaces", "--packages-ignore", "tf2_msgs"],
                         capture_output=True, text=True, cwd=repo_root, timeout=60)
    assert out.returncode == 0, out.stderr
    found = {line.split("\t")[0]: line.split("\t")[-1] for line in out.stdout.splitlines() if line.strip()}
    assert found.get("agricare") == "(ros.ament_python)", out.stdout
    assert found.get("agricare_interfaces") == "(ros.ament_cmake)", out.stdout
    assert "tf2_msgs" not in found   # the system tf2_msgs is never shadowed on a ROS install


def _load_yaml(path):
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: these files are large
    return yaml.load(path.read_text(), Loader=loader)


def _rosdep_keys():
    if not (SHARED_DATA / "rosdep").is_dir():
        pytest.skip(f"rosdep key lists not found at {SHARED_DATA / 'rosdep'}")
    keys = {}
    for name in ("base.yaml", "python.yaml"):
        keys.update(_load_yaml(SHARED_DATA / "rosdep" / name) or {})
    dist = _load_yaml(SHARED_DATA / "rosdep" / "kilted-distribution.yaml")
    ros = set()
    for repo, entry in (dist.get("repositories") or {}).items():
        release = (entry or {}).get("release") or {}
        ros |= set(release.get("packages") or ([repo] if release else []))
    return keys, ros


def test_every_rosdep_key_exists(repo_root):
    keys, ros = _rosdep_keys()
    for xml in PACKAGE_XMLS:
        for dep in _deps(repo_root / xml):
            if dep in OWN or dep in ros:
                continue
            assert dep in keys, f"{xml}: '{dep}' is neither a Kilted ROS package nor a rosdep key"
            rules = keys[dep] or {}
            assert rules.get("debian") or rules.get("ubuntu"), f"{xml}: rosdep key '{dep}' has no Debian/Ubuntu rule"


def test_declared_dependencies_match_the_imports(repo_root):
    sources = sorted((repo_root / "src" / "agricare").rglob("*.py")) + sorted((repo_root / "launch").glob("*.py"))
    imported = _imports(sources)
    std = set(sys.stdlib_module_names) | {"agricare", "_common"}
    needed = {}
    for mod, where in imported.items():
        if mod in std or mod in PIP_ONLY:
            continue
        needed.setdefault(PY_KEYS.get(mod, mod), where)
    declared = _deps(repo_root / "package.xml")
    missing = {k: v for k, v in needed.items() if k not in declared}
    assert not missing, f"imported but not declared in package.xml: {missing} (add the rosdep key)"
    conditional = {k for k, cond in declared.items() if cond}   # optional pieces (Gazebo) used by launch files
    test_only = {e.text.strip() for e in ET.parse(repo_root / "package.xml").getroot().iter("test_depend")}
    unused = set(declared) - set(needed) - conditional - test_only
    assert not unused, f"declared in package.xml but never imported: {sorted(unused)}"
    gz = {"ros_gz_bridge", "ros_gz_sim"}
    assert all(declared.get(k) for k in gz & set(declared)), "Gazebo packages must be optional (a condition)"
