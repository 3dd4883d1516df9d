"""Append-only, hash-chained audit log (JSON lines) for care transport.

Every record is one line of canonical JSON (sorted keys, no spaces, ASCII)::

    {"event":"boarded","prev":"<sha256 of the previous line>","seq":7,"sha256":"<own hash>","t_s":...,...}

- ``seq`` counts from 0 without gaps; ``prev`` is the SHA-256 (hex) of the previous line's bytes
  (64 zeros for the first line); ``sha256`` is the SHA-256 of the record without its ``sha256`` field,
  so an edit of the last line is caught too.
- Each append writes the whole line, flushes and fsyncs before returning. A failed write (full disk,
  I/O error) raises :class:`AuditWriteError`; the log then refuses further appends and keeps the events
  it could not write in :attr:`AuditLog.unwritten`, so nothing is lost silently. The care mission turns
  that error into a safe stop.
- :func:`verify_log` (``agricare audit verify LOG``) re-checks the chain and reports the first bad line:
  any edit, deletion, insertion, reordering or sequence gap breaks it. Truncation of the *last* lines
  can only be detected against a known head (``expect_head``): publish :attr:`AuditLog.head` elsewhere
  (diagnostics, the mission status) to anchor it.
- With a signing key (Ed25519, one per vehicle: :class:`agricare.core.security.keys.SigningKey`) every
  record also carries ``key_id`` and ``sig``, the signature of ``DOMAIN`` + its ``sha256``: a person who can
  edit the file can recompute the hash chain but not the signatures. ``verify_log(..., public_key=...)``
  (``agricare audit verify LOG --key PUB``) requires a valid signature on every record; a rewrite of the
  whole file with another key is caught, and one that drops records from the end is caught against the head
  sent to the fleet at each hand-over.
- :meth:`AuditLog.open` takes an exclusive lock (``flock``) on the file: a second writer is refused instead
  of splitting the chain. A torn last line (a crash in the middle of a write) is cut off, and the cut is
  recorded as the first new record (``recovered_torn_line`` with its length and hash).
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

GENESIS = "0" * 64
_RESERVED = ("seq", "prev", "sha256", "t_s", "event")
_SIGNATURE_FIELDS = ("sha256", "sig")
DOMAIN = b"agricare-audit-v1\n"


class AuditError(Exception):
    """The audit log cannot be used (e.g. an existing log is broken)."""


class AuditWriteError(AuditError):
    """An audit record could not be written durably (full disk, I/O error, closed file).

    Attributes
    ----------
    record : dict
        The record that was not written.
    errno : int or None
    """

    def __init__(self, message: str, record: dict | None = None, err: int | None = None):
        super().__init__(message)
        self.record = record
        self.errno = err


def canonical(record: Mapping) -> str:
    """The canonical JSON text of a record (one line, sorted keys, ASCII)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def seal(record: Mapping, signer=None) -> str:
    """Return the line for ``record`` (which must hold seq/prev/t_s/event) with its own hash added, and with
    ``signer`` (a SigningKey) its key id and signature."""
    body = {k: v for k, v in record.items() if k not in _SIGNATURE_FIELDS}
    if signer is not None:
        body["key_id"] = signer.key_id
    h = _sha(canonical(body))
    out = {**body, "sha256": h}
    if signer is not None:
        out["sig"] = base64.b64encode(signer.sign(DOMAIN + h.encode("ascii"))).decode("ascii")
    return canonical(out)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_log`.

    Attributes
    ----------
    ok : bool
    n_records : int
        Valid records before the first bad line (all of them when ok).
    head : str
        SHA-256 of the last valid line (GENESIS for an empty log).
    bad_line : int or None
        1-based number of the first bad line.
    reason : str
    line_text : str
        The first bad line (truncated to 200 characters).
    """

    ok: bool
    n_records: int
    head: str
    bad_line: int | None = None
    reason: str = ""
    line_text: str = ""


def verify_lines(lines, expect_head: str | None = None, public_key=None) -> VerifyResult:
    """Verify an iterable of lines (str or bytes, with or without the newline).

    ``public_key`` (Ed25519PublicKey): every record must carry a valid signature by it."""
    prev = GENESIS
    n = 0
    for lineno, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        complete = text.endswith("\n")
        text = text.rstrip("\n")

        def bad(reason, _lineno=lineno, _text=text, _n=n, _prev=prev):
            return VerifyResult(False, _n, _prev, _lineno, reason, _text[:200])

        if not complete:
            return bad("last line has no newline: torn write")
        try:
            rec = json.loads(text)
        except ValueError as exc:
            return bad(f"not valid JSON ({exc.msg})")
        if not isinstance(rec, dict):
            return bad("not a JSON object")
        missing = [k for k in _RESERVED if k not in rec]
        if missing:
            return bad(f"missing field(s) {missing}")
        if rec["seq"] != n:
            return bad(f"sequence number {rec['seq']!r}, expected {n} (gap, deletion or reordering)")
        if rec["prev"] != prev:
            return bad("previous-line hash does not match (a line before was edited, removed or moved)")
        body = {k: v for k, v in rec.items() if k not in _SIGNATURE_FIELDS}
        try:
            if rec["sha256"] != _sha(canonical(body)):
                return bad("record hash does not match its content (line edited)")
            if canonical(rec) != text:
                return bad("line is not in canonical form (line edited)")
        except ValueError as exc:
            return bad(f"invalid value ({exc})")
        if public_key is not None:
            if not isinstance(rec.get("sig"), str):
                return bad("record is not signed")
            try:
                public_key.verify(base64.b64decode(rec["sig"], validate=True),
                                  DOMAIN + str(rec["sha256"]).encode("ascii"))
            except Exception:  # InvalidSignature, bad base64
                return bad("signature does not match (record written or rewritten without the vehicle's key)")
        prev = _sha(text)
        n += 1
    if expect_head is not None and prev != expect_head:
        return VerifyResult(False, n, prev, n + 1 if n else 1,
                            f"log ends at head {prev[:16]}..., expected {expect_head[:16]}... "
                            "(lines removed from the end or a different log)")
    return VerifyResult(True, n, prev)


def verify_log(path: str | os.PathLike, expect_head: str | None = None, public_key=None) -> VerifyResult:
    """Verify the audit log file at ``path`` (raises OSError if it cannot be read)."""
    with open(path, "rb") as f:
        return verify_lines(f, expect_head, public_key)


class AuditLog:
    """Append-only hash-chained audit log.

    Parameters
    ----------
    stream : binary file object
        Opened for appending; needs ``write`` and ``flush``; ``fileno`` is used for fsync when present.
    seq, head : int, str
        Where the chain continues (from :meth:`open` on an existing log).
    fsync : bool
        fsync after every record (default; switch off only for throw-away logs).

    Use :meth:`open` for files. Not thread-safe: one writer per log.
    """

    def __init__(self, stream, *, seq: int = 0, head: str = GENESIS, fsync: bool = True, name: str = "audit",
                 signer=None):
        self._f = stream
        self.signer = signer
        self.seq = int(seq)
        self.head = head
        self._fsync = fsync
        self.name = name
        self.failed: AuditWriteError | None = None
        #: records that could not be written (kept in memory so they are never lost silently)
        self.unwritten: list[dict] = []

    @classmethod
    def open(cls, path: str | os.PathLike, *, fsync: bool = True, signer=None, t_s: float = 0.0) -> AuditLog:
        """Open (or create, mode 0600) a log, lock it for this writer and continue its chain.

        A torn last line is cut and the cut recorded (at time ``t_s``); any other damage is refused. With
        ``signer`` every new record is signed. Raises :class:`AuditError` when another writer holds the log.
        """
        path = os.fspath(path)
        parent = os.path.dirname(os.fspath(path))
        if parent:
            os.makedirs(parent, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AuditError(f"{path}: another writer holds this audit log; one writer per log") from None
        try:
            cut = _cut_torn_tail(fd)
            res = verify_log(path)
            if not res.ok:
                raise AuditError(f"{path}:{res.bad_line}: existing audit log is broken: {res.reason}; "
                                 "move it aside for inspection before starting")
        except BaseException:
            os.close(fd)
            raise
        log = cls(os.fdopen(fd, "ab", buffering=0), seq=res.n_records, head=res.head, fsync=fsync, name=path,
                  signer=signer)
        if cut is not None:
            log.append("recovered_torn_line", t_s, cut_bytes=len(cut), cut_sha256=hashlib.sha256(cut).hexdigest())
        return log

    def append(self, event: str, t_s: float, **fields) -> dict:
        """Write one event durably and return its record.

        Parameters
        ----------
        event : str
            Event name (``boarded``, ``handover_accepted``, ...).
        t_s : float
            Event time, s (sim or wall time of the caller; the log never reads a clock).
        **fields
            JSON-serialisable details (no ``seq``/``prev``/``sha256``/``t_s``/``event`` keys).

        Raises
        ------
        AuditWriteError
            The record could not be written and synced; the log is then failed for good.
        """
        bad = [k for k in fields if k in _RESERVED + ("sig", "key_id")]
        if bad:
            raise ValueError(f"reserved audit field name(s) {bad}")
        record = {"seq": self.seq, "prev": self.head, "t_s": float(t_s), "event": str(event), **fields}
        try:
            line = seal(record, self.signer)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit event {event!r} is not JSON-serialisable: {exc}") from exc
        if self.failed is not None:
            self.unwritten.append(record)
            raise AuditWriteError(f"audit log {self.name} failed earlier ({self.failed}); "
                                  f"event {event!r} not written", record, self.failed.errno)
        data = (line + "\n").encode("ascii")
        try:
            n = self._f.write(data)
            if n is not None and n != len(data):
                raise OSError(errno.EIO, f"short write ({n} of {len(data)} bytes)")
            self._f.flush()
            if self._fsync:
                fileno = getattr(self._f, "fileno", None)
                fd = None
                if fileno is not None:
                    try:
                        fd = fileno()
                    except (OSError, ValueError, AttributeError):
                        fd = None
                if fd is not None:
                    os.fsync(fd)
        except (OSError, ValueError) as exc:
            err = getattr(exc, "errno", None)
            what = "disk full" if err == errno.ENOSPC else (os.strerror(err) if err else str(exc))
            self.failed = AuditWriteError(
                f"cannot write audit log {self.name}: {what}; event {event!r} (seq {self.seq}) not recorded",
                record, err)
            self.unwritten.append(record)
            raise self.failed from exc
        self.head = _sha(line)
        self.seq += 1
        return {**record, "sha256": json.loads(line)["sha256"]}

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass


def _cut_torn_tail(fd: int) -> bytes | None:
    """Cut an incomplete last line (no newline) off the open file; returns the cut bytes or None."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    os.lseek(fd, size - 1, os.SEEK_SET)
    if os.read(fd, 1) == b"\n":
        return None
    # find the last newline (read backwards in blocks)
    pos, keep = size, 0
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        os.lseek(fd, pos, os.SEEK_SET)
        block = os.read(fd, step)
        i = block.rfind(b"\n")
        if i >= 0:
            keep = pos + i + 1
            break
    os.lseek(fd, keep, os.SEEK_SET)
    cut = os.read(fd, size - keep)
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return cut
