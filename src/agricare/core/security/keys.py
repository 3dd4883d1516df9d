"""Ed25519 keys on disk and the trust list a receiver checks signatures against.

Files (one directory per holder, default ``~/.config/agricare/keys``)::

    <key_id>.key    PKCS#8 PEM private key, mode 0600
    <key_id>.pub    raw public key, base64, one line
    trust.yaml      {keys: [{key_id, public_key (base64), kinds: [...], revoked: bool}]}

A private key file is refused when it is not a regular file, not owned by the current user, or readable /
writable by group or others (``mode & 0o077``); its directory is refused when another user owns it or when
group or others may write it (they could swap the key). Weak key material is refused: fewer than 32 bytes,
all bytes equal, fewer than 16 distinct byte values, or only printable ASCII (a password, not a key). The
same check guards hand-over keys.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agricare.core.security.weak import KeyMaterialError as KeyFileError
from agricare.core.security.weak import WeakKeyError, check_key_material

__all__ = ["KeyFileError", "WeakKeyError", "check_key_material", "SigningKey", "TrustList", "TrustEntry",
           "load_signing_key", "write_signing_key", "public_key_from_b64", "public_key_b64", "KeyInfo",
           "key_fingerprint", "list_keys", "generate_key", "rotate_key", "revoke_key"]

KEY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TRUST_FILE = "trust.yaml"


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
        raise KeyFileError(f"key id {key_id!r}: use 1-64 letters, digits, '_', '.', '-' (not starting with a symbol)")
    return key_id


def check_private_dir(path: str | os.PathLike) -> None:
    """Refuse a key directory that another user owns or that group/others may write."""
    path = os.fspath(path)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise KeyFileError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise KeyFileError(f"key directory {path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise KeyFileError(f"key directory {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others may "
                        f"replace keys in it; run 'chmod 700 {path}'")


def _read_private_file(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if st.st_uid != os.getuid():
            raise KeyFileError(f"key file {path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise KeyFileError(f"key file {path} has mode {mode:04o}: group or others can access it; "
                            f"run 'chmod 600 {path}'")
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
        return data
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SigningKey:
    """A private Ed25519 key with its id (what a signer holds)."""

    key_id: str
    private: Ed25519PrivateKey = field(repr=False)

    @property
    def public_b64(self) -> str:
        return public_key_b64(self.private.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    @classmethod
    def from_seed(cls, key_id: str, seed: bytes) -> SigningKey:
        """A key from 32 seed bytes (refused when weak)."""
        check_key_id(key_id)
        seed = check_key_material(seed, f"seed of {key_id}")
        if len(seed) != 32:
            raise WeakKeyError(f"seed of {key_id}: an Ed25519 seed has exactly 32 bytes, got {len(seed)}")
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        check_key_id(key_id)
        return cls(key_id, Ed25519PrivateKey.generate())


def public_key_b64(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(str(text).strip(), validate=True)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"public key: not base64 ({exc})") from None
    if len(raw) != 32:
        raise KeyFileError(f"public key: an Ed25519 public key has 32 bytes, got {len(raw)}")
    check_key_material(raw, "public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_signing_key(directory: str | os.PathLike, key: SigningKey) -> tuple[str, str]:
    """Write ``<key_id>.key`` (0600, never overwritten) and ``<key_id>.pub``; returns both paths."""
    directory = os.fspath(directory)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    check_private_dir(directory)
    key_path = os.path.join(directory, f"{key.key_id}.key")
    pub_path = os.path.join(directory, f"{key.key_id}.pub")
    pem = key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    with open(pub_path, "w") as f:
        f.write(key.public_b64 + "\n")
    return key_path, pub_path


def load_signing_key(path: str | os.PathLike, key_id: str | None = None) -> SigningKey:
    """Read a private key file (ownership, mode, directory and material checked)."""
    path = os.fspath(path)
    check_private_dir(os.path.dirname(os.path.abspath(path)))
    data = _read_private_file(path)
    try:
        priv = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"key file {path}: not an unencrypted PKCS#8 PEM key ({exc})") from None
    if not isinstance(priv, Ed25519PrivateKey):
        raise KeyFileError(f"key file {path}: not an Ed25519 key")
    check_key_material(priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption()), f"key file {path}")
    kid = key_id or os.path.splitext(os.path.basename(path))[0]
    return SigningKey(check_key_id(kid), priv)


@dataclass
class TrustEntry:
    key_id: str
    public_key: Ed25519PublicKey = field(repr=False)
    kinds: tuple[str, ...] = ()       # empty: any kind
    revoked: bool = False

    def allows(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds


class TrustList:
    """Public keys a receiver accepts, by key id (with the command kinds each may sign)."""

    def __init__(self, entries: Iterable[TrustEntry] = ()):
        self.entries: dict[str, TrustEntry] = {}
        for e in entries:
            self.add(e)

    def add(self, entry: TrustEntry) -> None:
        check_key_id(entry.key_id)
        self.entries[entry.key_id] = entry

    def trust(self, key: SigningKey | str, public: Ed25519PublicKey | None = None,
              kinds: Iterable[str] = ()) -> TrustList:
        """Add a signer (a :class:`SigningKey`, or a key id with its public key); returns self."""
        if isinstance(key, SigningKey):
            self.add(TrustEntry(key.key_id, key.private.public_key(), tuple(kinds)))
        else:
            self.add(TrustEntry(key, public, tuple(kinds)))
        return self

    def get(self, key_id: str) -> TrustEntry | None:
        return self.entries.get(key_id)

    def revoke(self, key_id: str) -> None:
        if key_id not in self.entries:
            raise KeyFileError(f"key {key_id!r} is not in the trust list")
        self.entries[key_id].revoked = True

    def to_dict(self) -> dict:
        return {"keys": [{"key_id": e.key_id, "public_key": public_key_b64(e.public_key), "kinds": list(e.kinds),
                          "revoked": bool(e.revoked)} for e in self.entries.values()]}

    @classmethod
    def from_dict(cls, data, where: str = "trust list") -> TrustList:
        if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
            raise KeyFileError(f"{where}: expected a mapping with a list 'keys'")
        out = cls()
        for i, e in enumerate(data.get("keys") or []):
            if not isinstance(e, dict) or "key_id" not in e or "public_key" not in e:
                raise KeyFileError(f"{where}: keys[{i}] needs key_id and public_key")
            kinds = e.get("kinds") or []
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise KeyFileError(f"{where}: keys[{i}].kinds must be a list of names")
            out.add(TrustEntry(check_key_id(str(e["key_id"])), public_key_from_b64(e["public_key"]), tuple(kinds),
                               bool(e.get("revoked", False))))
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrustList:
        """Read a trust file; refused when group or others may write it (they could add a key)."""
        path = os.fspath(path)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise KeyFileError(f"cannot read trust list {path}: {exc.strerror}") from None
        if stat.S_IMODE(st.st_mode) & 0o022:
            raise KeyFileError(f"trust list {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others may "
                            f"add keys to it; run 'chmod 644 {path}'")
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except yaml.YAMLError as exc:
            raise KeyFileError(f"trust list {path}: bad YAML ({exc})") from None
        return cls.from_dict(data, path)

    def save(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        tmp = f"{path}.tmp-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ key directory
# ``agricare keys`` and the operator app's admin page manage a key directory through these functions only.
@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the private key, only whether it is held here."""

    key_id: str
    fingerprint: str          # first 16 hex digits of SHA-256 of the base64 public key
    public_key: str           # base64
    kinds: tuple[str, ...]    # empty: any kind
    revoked: bool
    private_here: bool


def key_fingerprint(pub_b64: str) -> str:
    import hashlib

    return hashlib.sha256(pub_b64.encode("ascii")).hexdigest()[:16]


def _trust_path(directory: str) -> str:
    return os.path.join(directory, TRUST_FILE)


def _load_dir(directory: str | os.PathLike) -> tuple[str, TrustList]:
    d = os.path.expanduser(os.fspath(directory))
    if os.path.isdir(d):
        check_private_dir(d)
    path = _trust_path(d)
    return d, (TrustList.load(path) if os.path.exists(path) else TrustList())


def _info(d: str, e: TrustEntry) -> KeyInfo:
    pub = public_key_b64(e.public_key)
    return KeyInfo(e.key_id, key_fingerprint(pub), pub, tuple(e.kinds), bool(e.revoked),
                   os.path.exists(os.path.join(d, f"{e.key_id}.key")))


def list_keys(directory: str | os.PathLike) -> list[KeyInfo]:
    """The keys of ``directory``'s trust list (directory checked: owner, mode)."""
    d, trust = _load_dir(directory)
    return [_info(d, e) for e in trust.entries.values()]


def _add_new(d: str, trust: TrustList, key: SigningKey, kinds) -> tuple[KeyInfo, str, str]:
    if trust.get(key.key_id) is not None:
        raise KeyFileError(f"{key.key_id} already exists in {_trust_path(d)}")
    try:
        key_path, pub_path = write_signing_key(d, key)
    except FileExistsError:
        raise KeyFileError(f"{os.path.join(d, key.key_id + '.key')} exists; not overwritten") from None
    entry = TrustEntry(key.key_id, key.private.public_key(), tuple(kinds))
    trust.add(entry)
    return _info(d, entry), key_path, pub_path


def generate_key(directory: str | os.PathLike, key_id: str, kinds: Iterable[str] = (),
                 seed: bytes | None = None) -> tuple[KeyInfo, str, str]:
    """New key pair ``key_id`` (or from 32 bytes of ``seed``; weak material refused) in ``directory``; its
    public key joins the trust list. Returns (info, private key path, public key path)."""
    d, trust = _load_dir(directory)
    key = SigningKey.from_seed(check_key_id(key_id), seed) if seed is not None else \
        SigningKey.generate(check_key_id(key_id))
    out = _add_new(d, trust, key, kinds)
    trust.save(_trust_path(d))
    return out


def rotate_key(directory: str | os.PathLike, old_id: str, new_id: str) -> tuple[KeyInfo, str, str]:
    """Generate ``new_id`` with ``old_id``'s kinds, then revoke ``old_id`` (one trust-list write)."""
    d, trust = _load_dir(directory)
    old = trust.get(old_id)
    if old is None:
        raise KeyFileError(f"{old_id} is not in {_trust_path(d)}")
    out = _add_new(d, trust, SigningKey.generate(check_key_id(new_id)), old.kinds)
    trust.revoke(old_id)
    trust.save(_trust_path(d))
    return out


def revoke_key(directory: str | os.PathLike, key_id: str) -> str:
    """Mark ``key_id`` revoked in the trust list (receivers then refuse it); returns the trust file path."""
    d, trust = _load_dir(directory)
    trust.revoke(key_id)
    trust.save(_trust_path(d))
    return _trust_path(d)
