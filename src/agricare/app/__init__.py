"""The operator web app (``agricare serve``): guardians, nursery staff, farmers and admins.

- :mod:`.db`: tables and schema migrations (SQLite file by default, any SQLAlchemy URL, e.g. PostgreSQL).
- :mod:`.security`: argon2 passwords, sessions, CSRF, login lock-out, audit.
- :mod:`.bridge`: the rclpy node inside the server process (robot state in, signed commands out).
- :mod:`.server`: the FastAPI application (JSON API, WebSocket live updates, the pages in ``static/``).
- :mod:`.robots`: a robot host for the demo and the tests (the simulated robots in their own process).
"""
