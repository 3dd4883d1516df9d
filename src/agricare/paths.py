"""Where agricare's shipped files (config/, urdf/, worlds/, launch/) are.

An installed package (colcon, ros2 launch) has them in ``share/agricare`` found through the ament index; a
source checkout or an editable pip install has them at the repository root.
"""

from __future__ import annotations

import functools
import pathlib

PACKAGE = "agricare"


@functools.lru_cache(maxsize=1)
def share_dir() -> pathlib.Path:
    """The directory holding ``config/``, ``urdf/``, ``worlds/`` and ``launch/``."""
    source_root = pathlib.Path(__file__).resolve().parents[2]
    if (source_root / "package.xml").is_file() and (source_root / "config").is_dir():
        return source_root
    try:
        from ament_index_python.packages import get_package_share_directory

        return pathlib.Path(get_package_share_directory(PACKAGE))
    except Exception as exc:  # PackageNotFoundError, or ament_index missing
        raise FileNotFoundError(
            f"cannot find the {PACKAGE} share directory (not a source checkout and not in the ament index: "
            f"{exc}); source install/setup.bash or set AMENT_PREFIX_PATH"
        ) from exc


def resolve(path: str | pathlib.Path, subdir: str = "") -> pathlib.Path:
    """Resolve a user path: absolute or existing relative paths as given, else relative to share/subdir."""
    p = pathlib.Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return share_dir() / subdir / p


def urdf_path(robot_type: str) -> pathlib.Path:
    return share_dir() / "urdf" / f"{robot_type}.urdf"


def config_path(name: str) -> pathlib.Path:
    return share_dir() / "config" / name
