"""agricare's own interfaces (``agricare_interfaces``): present, or one clear line at start.

No node falls back to another message type when the package is missing (a silent type change breaks the
graph: subscribers stop matching, the safety supervisor stops hearing tracked people). Importing
``agricare.nodes`` checks once; the console entry points turn the error into one line and exit code 2.
"""

from __future__ import annotations

MESSAGE = ("agricare_interfaces is not importable: build interfaces/ (colcon build --base-paths interfaces, "
           "or `make venv`) and source its install/setup.bash")


class InterfacesMissing(ImportError):
    """The agricare_interfaces package (or a type in it) cannot be imported."""


def check() -> None:
    """Raise :class:`InterfacesMissing` with one line unless every generated module imports."""
    try:
        import agricare_interfaces.action  # noqa: F401
        import agricare_interfaces.msg  # noqa: F401
        import agricare_interfaces.srv  # noqa: F401
    except ImportError as exc:
        raise InterfacesMissing(f"{MESSAGE} ({exc})") from None


def main() -> int:
    """Console entry point of every node executable: the node is the executable's own name."""
    import importlib
    import os
    import sys

    name = os.path.basename(sys.argv[0])
    if name.endswith(".py"):
        name = name[:-3]
    try:
        module = importlib.import_module(f"agricare.nodes.{name}")
    except InterfacesMissing as exc:
        print(f"[FATAL] {name}: {exc}", file=sys.stderr)
        return 2
    return module.main()
