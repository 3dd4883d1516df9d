"""Bring-up: one scenario description drives the embedded runner, the launch files and the recorder."""
