"""No silent type fallback: without agricare_interfaces a node (and `agricare run`) fails at start with one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="rclpy (ros-kilted-rclpy) is not installed")

# a meta-path finder that hides agricare_interfaces, as on a machine where it was never built
HIDE = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "agricare_interfaces" or name.startswith("agricare_interfaces."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, _Hide())
"""


def _run(code, repo_root):
    env = dict(os.environ, PYTHONPATH=str(repo_root / "src"))
    return subprocess.run([sys.executable, "-c", HIDE + code], capture_output=True, text=True, env=env,
                          timeout=60, cwd=repo_root)


@pytest.mark.parametrize("node", ["safety_supervisor_node", "dispatcher_node", "scouting_mission_node"])
def test_node_executable_fails_with_one_line(repo_root, node):
    r = _run(f"sys.argv[0] = '/install/lib/agricare/{node}'\n"
             "from agricare.ros.interfaces import main\nsys.exit(main())", repo_root)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert node in lines[0] and "agricare_interfaces is not importable" in lines[0]


def test_agricare_run_fails_with_one_line(repo_root):
    r = _run("from agricare.cli import main\nsys.exit(main(['run', 'config/scenarios/farm_small.yaml', "
             "'--max-sim-s', '1', '--no-record', '--no-report']))", repo_root)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "agricare_interfaces is not importable" in lines[0], r.stderr


def test_no_node_falls_back_to_another_type(repo_root):
    """The node sources import the own types directly; no ``try: import ... except ImportError`` around them."""
    import ast

    for path in sorted((repo_root / "src" / "agricare" / "nodes").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Try):
                continue
            catches = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if not catches & {"ImportError", "ModuleNotFoundError"}:
                continue
            imported = [n.module for b in node.body for n in ast.walk(b) if isinstance(n, ast.ImportFrom)]
            assert not any((m or "").startswith("agricare_interfaces") for m in imported), \
                f"{path.name}:{node.lineno} falls back when agricare_interfaces is missing"


def test_typed_status_messages_convert_to_the_former_json_keys():
    msgs = pytest.importorskip("agricare_interfaces.msg")
    from agricare.ros.convert import controller_status_to_dict, site_request_to_dict

    req = msgs.SiteRequest(type="handover", child="e1", trip="trip_e1", place="home_1", robot="shuttle_1")
    req.position.x, req.position.y = 75.0, 101.8
    assert site_request_to_dict(req) == {"type": "handover", "child": "e1", "trip": "trip_e1", "place": "home_1",
                                         "xy": [75.0, 101.8], "robot": "shuttle_1"}
    st = msgs.ControllerStatus(state="tracking", cross_track_m=0.25, progress=0.5, target_index=12, direction=-1)
    d = controller_status_to_dict(st)
    assert d["state"] == "tracking" and d["cross_track_m"] == 0.25 and d["direction"] == -1 and d["target_index"] == 12


def test_typed_plan_and_notification_keep_every_field_of_the_former_json():
    """dispatch/plan is a DispatchPlan: the plan dict the shuttles read comes back from it unchanged."""
    msgs = pytest.importorskip("agricare_interfaces.msg")
    from agricare.ros.convert import care_notification_to_dict, plan_dict_to_msg, plan_msg_to_dict

    plan = {"revision": 4, "reason": "new_request", "solution": {
        "routes": {"shuttle_1": [{"request": "t1", "action": "pickup", "arrival_s": 10.5, "start_s": 12.0,
                                  "xy": [75.0, 101.8]},
                                 {"request": "t1", "action": "dropoff", "arrival_s": 80.0, "start_s": 80.0,
                                  "xy": [192.0, 101.8]}],
                   "shuttle_2": []},
        "unserved": [{"request": "t9", "reason": "window: too late"}], "distance_m": 117.0},
        "meta": {"t1": {"child": "c1", "guardians": ["g1", "g2"], "pickup_place": "home_1",
                        "dropoff_place": "nursery", "dropoff_marker": 14}}}
    back = plan_msg_to_dict(plan_dict_to_msg(plan))
    assert back["revision"] == 4 and back["reason"] == "new_request"
    assert back["solution"]["routes"] == plan["solution"]["routes"]
    assert back["solution"]["unserved"] == plan["solution"]["unserved"]
    assert back["meta"] == plan["meta"]          # an absent marker stays absent (the place's marker is used)
    note = msgs.CareNotification(robot="shuttle_1", level="warn", kind="canceled", message="holding",
                                 requests=["t1"])
    assert care_notification_to_dict(note) == {"t_s": 0.0, "robot": "shuttle_1", "level": "warn",
                                                "kind": "canceled", "message": "holding", "requests": ["t1"]}
