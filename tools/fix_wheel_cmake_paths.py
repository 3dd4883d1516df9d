"""Rewrite build-machine paths baked into the ROS 2 wheels' CMake exports (TOOLCHAIN.md trap 3).

The wheels' ``share/**/*.cmake`` name ``/opt/python/cp311-cp311/include/python3.11`` and that machine's
numpy include directory; CMake generate fails on them. Point them at this interpreter's include dir and
numpy's. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import pathlib
import re
import sys
import sysconfig

import numpy


def main(prefix: str) -> int:
    include = sysconfig.get_paths()["include"]
    np_include = numpy.get_include()
    patterns = [
        (re.compile(r"/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include"), np_include),
        (re.compile(r"/opt/python/cp311-cp311/include/python3\.11"), include),
    ]
    changed = 0
    for path in pathlib.Path(prefix, "share").rglob("*.cmake"):
        text = path.read_text(errors="surrogateescape")
        new = text
        for pat, repl in patterns:
            new = pat.sub(repl, new)
        if new != text:
            path.write_text(new, errors="surrogateescape")
            changed += 1
    print(f"fix_wheel_cmake_paths: {changed} file(s) rewritten (python include {include}, numpy {np_include})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
