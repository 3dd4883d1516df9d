"""rclpy glue shared by every node: QoS profiles, parameters, message conversion, diagnostics."""
