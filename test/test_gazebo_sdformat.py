"""The Gazebo worlds and models load with zero errors in libsdformat, the parser Gazebo itself uses.

A small loader (tools/sdf_check/sdf_check.cc) is built against Debian's libsdformat-dev (sdformat 12: SDF 1.9,
as read by Gazebo Fortress and every later release: Garden sdformat 13, Harmonic 14, Ionic 15). The files
declare SDF 1.9. Skipped, with the reason, where the library or a compiler is missing (``make venv`` installs
libsdformat-dev through apt).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = ["worlds/farm.sdf", "worlds/care.sdf", "worlds/models/tractor/model.sdf",
         "worlds/models/row_robot/model.sdf", "worlds/models/care_shuttle/model.sdf",
         "worlds/models/boarding_sign_11/model.sdf"]


@pytest.fixture(scope="module")
def sdf_check(tmp_path_factory):
    if shutil.which("g++") is None or shutil.which("pkg-config") is None:
        pytest.skip("g++ or pkg-config missing (apt-get install g++ pkg-config libsdformat-dev)")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "sdformat12"], capture_output=True, text=True)
    if flags.returncode != 0:
        pytest.skip("libsdformat 12 not installed (apt-get install libsdformat-dev; `make venv` does it)")
    exe = tmp_path_factory.mktemp("sdf_check") / "sdf_check"
    build = subprocess.run(["g++", "-std=c++17", "-O0", str(ROOT / "tools" / "sdf_check" / "sdf_check.cc"),
                            *flags.stdout.split(), "-o", str(exe)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    return exe


def _check(exe, *files):
    return subprocess.run([str(exe), str(ROOT / "worlds" / "models"), *map(str, files)], capture_output=True,
                          text=True, timeout=120)


def test_worlds_and_models_load_without_errors(sdf_check):
    res = _check(sdf_check, *(ROOT / f for f in FILES))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.endswith("error(s)")]
    assert len(lines) == len(FILES)
    for ln in lines:
        assert "SDF 1.9" in ln and ln.endswith(" 0 error(s)"), ln
    worlds = {ln.split(":")[0]: ln for ln in lines if "1 world(s)" in ln}
    assert len(worlds) == 2


def test_the_loader_reports_errors(sdf_check, tmp_path):
    """A world including a model that does not exist fails: the check is not a formality."""
    text = (ROOT / "worlds" / "care.sdf").read_text().replace("model://care_shuttle", "model://no_such_model", 1)
    bad = tmp_path / "bad.sdf"
    bad.write_text(text)
    res = _check(sdf_check, bad)
    assert res.returncode == 1 and "0 error(s)" not in res.stdout, res.stdout
