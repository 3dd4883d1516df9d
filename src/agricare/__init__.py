"""agricare: ROS 2 control framework for smart farm machinery and childcare transport robots."""

__version__ = "0.1.0"
