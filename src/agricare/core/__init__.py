"""Pure-Python algorithms (numpy, OpenCV, shapely). Nothing below this package imports rclpy."""
