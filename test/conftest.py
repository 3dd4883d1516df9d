"""Shared pytest fixtures.

The ROS fixtures give each test its own rclpy context on a unique domain so tests never see each other.
"""

from __future__ import annotations

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()


@pytest.fixture
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
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=int(os.environ.get("AGRICARE_TEST_DOMAIN_ID", "77")))
    try:
        yield ctx
    finally:
        try:
            ctx.try_shutdown()
        except Exception:
            pass
