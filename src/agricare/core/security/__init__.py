"""Security of commands and records: Ed25519 keys (keys.py), signed command envelopes (commands.py)."""
