"""Shared pytest fixtures.

The ROS fixtures give each test its own rclpy context on a unique domain so tests never see each other.
"""

from __future__ import annotations

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# In-process ROS tests: no DDS discovery outside this process, so parallel test runs on one machine (and the
# demo) never see each other's /clock or topics. A test that needs another process sets its own range.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = os.environ.get("AGRICARE_TEST_DISCOVERY_RANGE", "OFF")
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


@pytest.fixture
def shared_data() -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context, isolated to this host, shut down after the test."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=int(os.environ.get("AGRICARE_TEST_DOMAIN_ID", "77")))
    try:
        yield ctx
    finally:
        try:
            ctx.try_shutdown()
        except Exception:
            pass
