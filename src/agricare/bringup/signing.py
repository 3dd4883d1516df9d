"""Mission goals are signed: the operator key of a run and the mission nodes' trust lists.

In ``agricare run`` (and the launch files) the runner is the operator that sends each robot its goal. It
signs them with ``<out>/keys/operator.key`` (made once, 0600, ``agricare keys`` format); the mission nodes
trust that key for ``mission_goal`` only (``<out>/keys/operator_trust.yaml``) and keep their sequence
numbers in ``<out>/state/<robot>_<node>_commands.json``. A scenario that names ``goal_trust_file`` /
``command_replay_file`` itself (a vehicle: ``/var/lib/agricare/...``) keeps its own; its goals are then
signed with the key beside that trust list (``<dir>/<id>.key`` for ``<dir>/<id>_trust.yaml``, as
:func:`ensure_key` writes them at commissioning).
"""

from __future__ import annotations

import os
import pathlib

#: mission node -> (action name, action type "module:Class")
MISSION_ACTIONS = {"farm_mission_node": ("cover_field", "agricare_interfaces.action:CoverField"),
                   "care_mission_node": ("transport_child", "agricare_interfaces.action:TransportChild"),
                   "scouting_mission_node": ("scout_field", "agricare_interfaces.action:ScoutField")}
OPERATOR_KEY_ID = "operator"


def ensure_key(directory, key_id: str, kinds) -> tuple[pathlib.Path, pathlib.Path]:
    """``<directory>/<key_id>.key`` (made when missing) and ``<directory>/<key_id>_trust.yaml`` trusting it
    for ``kinds``; returns both paths."""
    from agricare.core.security.keys import SigningKey, TrustList, write_signing_key

    directory = pathlib.Path(directory)
    key, trust = directory / f"{key_id}.key", directory / f"{key_id}_trust.yaml"
    if not key.exists():
        signing = SigningKey.generate(key_id)
        try:
            write_signing_key(directory, signing)
        except FileExistsError:
            pass   # another process made it a moment ago
    if not trust.exists():
        from agricare.core.security.keys import load_signing_key

        TrustList().trust(load_signing_key(key), kinds=list(kinds)).save(trust)
    return key, trust


def prepare_mission_signing(nodes, out_dir) -> dict[str, pathlib.Path]:
    """Give every mission node of ``nodes`` (NodeSpec list, changed in place) a goal trust list and a
    sequence store under ``out_dir`` unless it names its own; returns the key that signs each mission's
    goals, by the mission node's full name."""
    specs = [s for s in nodes if s.node in MISSION_ACTIONS]
    if not specs:
        return {}
    out = pathlib.Path(os.path.abspath(os.fspath(out_dir) if out_dir is not None else "out"))
    keys = {}
    for s in specs:
        robot = s.robot or "robot"
        s.params.setdefault("command_replay_file", str(out / "state" / f"{robot}_{s.node}_commands.json"))
        own = str(s.params.get("goal_trust_file") or "")
        if own.endswith("_trust.yaml"):   # commissioned: the key beside the trust list
            keys[s.fqn] = pathlib.Path(own[:-len("_trust.yaml")] + ".key")
            continue
        key, trust = ensure_key(out / "keys", OPERATOR_KEY_ID, ["mission_goal"])
        s.params.setdefault("goal_trust_file", str(trust))
        keys[s.fqn] = key
    return keys
