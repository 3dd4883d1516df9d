"""ament_python package agricare (src layout).

One console entry point per node module in ``src/agricare/nodes`` (each defines ``main``) plus the
``agricare`` CLI. Data files land under ``share/agricare`` as ``ros2 launch`` expects.
"""

import glob
import os

from setuptools import find_packages, setup

PACKAGE = "agricare"
HERE = os.path.dirname(os.path.abspath(__file__))


def node_entry_points():
    eps = []
    for path in sorted(glob.glob(os.path.join(HERE, "src", PACKAGE, "nodes", "*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if name.startswith("_"):
            continue
        # one launcher for all: it imports agricare.nodes.<executable name> and turns a missing
        # agricare_interfaces into one clear line instead of a traceback
        eps.append(f"{name} = {PACKAGE}.ros.interfaces:main")
    return eps


def tree(directory):
    """data_files entries for every file below directory, keeping sub-folders."""
    out = {}
    for path in glob.glob(os.path.join(directory, "**", "*"), recursive=True):
        if os.path.isfile(path) and "__pycache__" not in path:
            rel = os.path.relpath(path, HERE)
            dest = os.path.join("share", PACKAGE, os.path.dirname(rel))
            out.setdefault(dest, []).append(rel)
    return sorted(out.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"agricare.app": ["static/*"]},   # the operator app's pages
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        # the CLI on PATH after `source install/setup.bash` (node executables stay in lib/agricare for ros2 run)
        ("bin", ["scripts/agricare"]),
        *tree("launch"),
        *tree("config"),
        *tree("urdf"),
        *tree("worlds"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="agricare developers",
    maintainer_email="dev@agricare.invalid",
    description="ROS 2 control framework for smart farm machinery and childcare transport robots",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [f"{PACKAGE} = {PACKAGE}.cli:main", *node_entry_points()],
    },
)
