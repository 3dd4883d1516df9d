"""One thin rclpy node per module. Importing this package checks that agricare_interfaces is built."""

from agricare.ros.interfaces import check as _check

_check()
