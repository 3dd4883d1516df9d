"""Print the topic table (markdown) of the shipped scenario graphs, QoS read from the built nodes.

    python tools/topic_table.py [config/scenarios/farm.yaml config/scenarios/care.yaml]

Builds each graph in-process (nothing runs), then lists every topic with its type, its publishers and
subscribers (node names without the robot namespace) and the QoS each side uses.
"""

from __future__ import annotations

import re
import sys

from rclpy.qos import DurabilityPolicy, ReliabilityPolicy


def qos_name(q) -> str:
    rel = "reliable" if q.reliability == ReliabilityPolicy.RELIABLE else "best effort"
    dur = ", transient local" if q.durability == DurabilityPolicy.TRANSIENT_LOCAL else ""
    return rel + dur


def collect(paths):
    from agricare.bringup.graph import load_graph
    from agricare.bringup.runner import EmbeddedRunner

    rows: dict[str, dict] = {}
    robots = set()
    for path in paths:
        graph = load_graph(path)
        robots |= set(graph.robots)
        runner = EmbeddedRunner(graph, None, seed=0, until_done=False, progress=None, record=False)
        runner.build()
        try:
            for _ in range(20):
                runner.sim.step_once()
                runner.spin_some(4)
            node = runner.monitor
            for topic, types in node.get_topic_names_and_types():
                generic = topic
                for r in graph.robots:
                    generic = re.sub(rf"^/{re.escape(r)}/", "", generic)
                if "/_action/" in generic:
                    continue  # actions are listed separately
                row = rows.setdefault(generic, {"type": types[0].replace("/msg/", "/"), "pub": {}, "sub": {}})
                for side, infos in (("pub", node.get_publishers_info_by_topic(topic)),
                                    ("sub", node.get_subscriptions_info_by_topic(topic))):
                    for i in infos:
                        if i.node_name in ("agricare_runner", "_NODE_NAME_UNKNOWN_"):
                            continue
                        row[side].setdefault(i.node_name, set()).add(qos_name(i.qos_profile))
        finally:
            runner.shutdown()
    return rows


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:]) or ["config/scenarios/farm.yaml",
                                                            "config/scenarios/care.yaml"]
    rows = collect(paths)
    print("| topic | type | publishers (QoS) | subscribers (QoS) |")
    print("|---|---|---|---|")
    for topic in sorted(rows, key=lambda t: (t.startswith("/"), t)):
        r = rows[topic]

        def fmt(side, r=r):
            if len(r[side]) > 6:
                qos = sorted({q for qs in r[side].values() for q in qs})
                return f"every node ({' / '.join(qos)})"
            return "<br>".join(f"{n} ({' + '.join(sorted(q))})" for n, q in sorted(r[side].items())) or "-"
        print(f"| `{topic}` | {r['type']} | {fmt('pub')} | {fmt('sub')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
