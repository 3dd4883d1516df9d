"""Refuse guessable key material (no cryptography import: the hand-over HMAC keys use it too)."""

from __future__ import annotations

MIN_KEY_BYTES = 32


class KeyMaterialError(ValueError):
    """A key or trust file cannot be used (permissions, owner, format, weak material)."""


class WeakKeyError(KeyMaterialError):
    """Key material that is guessable (password text, repeated bytes, too short)."""


def check_key_material(raw: bytes, what: str = "key", min_bytes: int = MIN_KEY_BYTES) -> bytes:
    """Refuse guessable key material; returns ``raw`` unchanged when it passes.

    Refused: fewer than ``min_bytes`` bytes, all bytes equal, fewer than ``min(16, n // 2)`` distinct byte
    values, or only printable ASCII (a password, not a key). Random 32 bytes fail with probability below
    1e-12 (all printable: (95/256)^32); random 16 bytes below 1e-6.
    """
    raw = bytes(raw)
    if len(raw) < min_bytes:
        raise WeakKeyError(f"{what}: {len(raw)} bytes, need at least {min_bytes} random bytes")
    if len(set(raw)) == 1:
        raise WeakKeyError(f"{what}: every byte is 0x{raw[0]:02x}; generate a random key")
    need = min(16, len(raw) // 2)
    if len(set(raw)) < need:
        raise WeakKeyError(f"{what}: only {len(set(raw))} distinct byte values; not a random key")
    if all(0x20 <= b < 0x7F for b in raw.strip(b" \t\r\n")):  # a text file's newline does not make it a key
        raise WeakKeyError(f"{what}: printable text (a password?), not a random key")
    return raw
