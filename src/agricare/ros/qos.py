"""Named QoS profiles (DESIGN.md house style 4).

- ``SENSOR_QOS``: best effort, keep last 5, volatile. Sensor streams where the newest sample matters.
  A best-effort subscription also receives from reliable publishers, so use it on both ends.
- ``COMMAND_QOS``: reliable, keep last 1. Velocity and actuator commands: only the latest counts.
- ``RELIABLE_QOS``: reliable, keep last 10. Events and status that must not be lost.
- ``LATCHED_QOS``: reliable, transient local, keep last 1. Plans, maps, robot description: late joiners
  get the last message.
"""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)

COMMAND_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

RELIABLE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

PROFILES = {
    "sensor": SENSOR_QOS,
    "command": COMMAND_QOS,
    "reliable": RELIABLE_QOS,
    "latched": LATCHED_QOS,
}
