"""Embedded headless simulator (no ROS): fixed-step, seeded 2-D world of fields, crop rows, roads, places,
obstacles, people and robots.

Modules: ``scenarios`` (YAML schema, ``load_scenario``, ``ScenarioError``), ``world`` (``World``: step,
commands, sensors due, ground truth, contacts, coverage, row truth), ``vehicles`` (Ackermann tractor,
differential drive), ``sensors`` (odometry, IMU, GNSS, ray-cast scan, battery), ``camera`` (OpenCV
ground-plane renderer), ``coverage`` (pass-counting raster), ``people`` (walkers). The ROS wrapper is
``agricare.nodes.sim_node``.
"""
