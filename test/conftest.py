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


class Operator:
    """An operator's signing key for mission goals and a trust list of it (what the runner and the app have)."""

    def __init__(self, directory: pathlib.Path):
        from agricare.bringup.signing import ensure_key
        from agricare.core.security.keys import load_signing_key

        self.dir = directory
        key_path, self.trust = ensure_key(directory / "keys", "operator", ["mission_goal"])
        self.key_file = key_path
        self.key = load_signing_key(key_path)

    def replay(self, name: str = "mission") -> str:
        return str(self.dir / "state" / f"{name}_commands.json")

    def parameters(self, name: str = "mission") -> list:
        """ROS parameters of a mission node that takes this operator's goals."""
        from rclpy.parameter import Parameter

        return [Parameter("goal_trust_file", value=str(self.trust)),
                Parameter("command_replay_file", value=self.replay(name))]

    def sign(self, goal, target: str = "", **kw):
        from agricare.ros.signed import sign_message

        return sign_message(goal, self.key, kind="mission_goal", target=target, **kw)


@pytest.fixture
def operator(tmp_path) -> Operator:
    """Signing key + trust list for mission goals (missions refuse unsigned goals)."""
    return Operator(tmp_path / "operator")


# property tests search with a fixed seed: `make test` gives the same answer on every machine and run (a case a
# search turns up is kept as an explicit test). Set AGRICARE_HYPOTHESIS_RANDOM=1 to search afresh.
try:
    from hypothesis import settings as _hyp_settings
except ImportError:   # the property tests skip themselves without hypothesis
    pass
else:
    _hyp_settings.register_profile("agricare", derandomize=not os.environ.get("AGRICARE_HYPOTHESIS_RANDOM"))
    _hyp_settings.load_profile("agricare")
