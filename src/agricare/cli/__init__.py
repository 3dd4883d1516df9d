"""The ``agricare`` command line.

Each sub-command lives in its own module ``agricare/cli/cmd_<name>.py`` and defines::

    COMMAND = "plan-coverage"          # the sub-command name
    HELP = "one line for --help"
    def add_arguments(parser): ...     # argparse arguments
    def run(args) -> int: ...          # exit code

Modules are discovered at start, so adding a command never touches a shared file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _commands():
    import agricare.cli as pkg

    found = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("cmd_"):
            continue
        mod = importlib.import_module(f"agricare.cli.{info.name}")
        found[mod.COMMAND] = mod
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="agricare", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = _commands()
    for name, mod in commands.items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from agricare.ros.interfaces import InterfacesMissing

    try:
        return int(commands[args.command].run(args) or 0)
    except (CliError, InterfacesMissing) as exc:
        print(f"agricare {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"agricare {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
