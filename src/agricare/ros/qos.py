"""Named QoS profiles (DESIGN.md house style 4).

- ``SENSOR_QOS``: best effort, keep last 5, volatile. Sensor streams where the newest sample matters.
  A best-effort subscription also receives from reliable publishers, so use it on both ends.
- ``LATEST_SENSOR_QOS``: best effort, keep last 1, volatile. Subscriptions of a slow consumer of a fast stream
  (a camera's perception): only the newest frame waits, so a frame slower to process than the stream's period
  never builds a backlog of old frames between the world and the decision.
- ``COMMAND_QOS``: reliable, keep last 1. Velocity and actuator commands: only the latest counts.
- ``RELIABLE_QOS``: reliable, keep last 10. Events and status that must not be lost.
- ``STATE_QOS``: reliable, keep last 10, volatile. Odometry (``odom``, ``odometry/filtered``): RViz, Nav2
  and robot_localization subscribe reliable, and a reliable subscription gets nothing from a best-effort
  publisher. Our own odometry subscriptions stay best-effort (``SENSOR_QOS``), which matches both.
- ``LATCHED_QOS``: reliable, transient local, keep last 1. Plans, maps, robot description: late joiners
  get the last message. Publish with it; subscribe with :func:`subscribe_latched`.

Why :func:`subscribe_latched`: a transient-local subscription is incompatible with a volatile publisher
(``ros2 topic pub``, Nav2's planner), which then reaches nobody, silently; a volatile subscription matches
both kinds but misses the last message published before it joined. ``subscribe_latched`` creates both and
delivers each sample once (duplicates from a transient-local publisher, which matches both, are dropped by
publisher GID and sequence number).
"""

import collections

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)

LATEST_SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
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

STATE_QOS = QoSProfile(
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

LATCHED_VOLATILE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
"""The volatile half of :func:`subscribe_latched`: matches transient-local and volatile publishers."""

PROFILES = {
    "sensor": SENSOR_QOS,
    "command": COMMAND_QOS,
    "reliable": RELIABLE_QOS,
    "state": STATE_QOS,
    "latched": LATCHED_QOS,
}


def subscribe_latched(node, msg_type, topic, callback, **kwargs):
    """Subscribe to a latched topic so that every publisher reaches ``callback``, each sample once.

    A transient-local subscription gets the last message of a transient-local publisher that published
    before this node joined; a volatile subscription alongside it gets volatile publishers. A sample of a
    transient-local publisher arrives on both: the second arrival is recognised as the twin of an equal
    message that came on the other subscription and not yet paired, and dropped. (rclpy's EventsExecutor
    gives no message info, so the pairing is by content; equal messages are delivered as often as they
    were published.)

    Returns
    -------
    tuple of rclpy.subscription.Subscription
        (transient-local subscription, volatile subscription).
    """
    unpaired = (collections.deque(maxlen=16), collections.deque(maxlen=16))

    def make(half):
        mine, other = unpaired[half], unpaired[1 - half]

        def deliver(msg):
            for i, seen in enumerate(other):
                if seen == msg:
                    del other[i]
                    return None
            mine.append(msg)
            return callback(msg)
        return deliver

    # the transient-local half cannot match a volatile publisher; that is expected, not worth a warning
    quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _event: None)
    return (node.create_subscription(msg_type, topic, make(0), LATCHED_QOS, event_callbacks=quiet, **kwargs),
            node.create_subscription(msg_type, topic, make(1), LATCHED_VOLATILE_QOS, **kwargs))
