"""Access tokens: who may open which page and websocket, in which role.

A token is ``secrets.token_urlsafe(24)`` (192 random bits, 32 URL-safe characters). The
server keeps only its SHA-256 (hex) with the role, session and participant it grants,
in a small SQLite file next to the session store (``service.sqlite``), so served
sessions and their tokens survive a restart while a copy of the file gives no access.
A presented token is hashed, looked up by its hash, and the stored hash compared with
:func:`hmac.compare_digest` (constant time). Tokens are never logged: :func:`redact`
takes them out of any URL or text before it is printed to a log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from vagus.exceptions import StoreError

__all__ = [
    "ROLES",
    "TOKEN_BYTES",
    "Grant",
    "Role",
    "ServedSession",
    "TokenStore",
    "hash_token",
    "new_token",
    "redact",
]

Role = Literal["participant", "practitioner", "viewer", "admin"]
ROLES: Final[tuple[Role, ...]] = ("participant", "practitioner", "viewer", "admin")
#: Random bytes per token (192 bits; the issue asks for at least 128).
TOKEN_BYTES: Final = 24
#: The file, in the data directory, that holds token hashes and served sessions.
SERVICE_DB_FILENAME: Final = "service.sqlite"

_TOKEN_IN_TEXT = re.compile(r"(token=)[A-Za-z0-9_\-]+")


def new_token() -> str:
    """A fresh token: :data:`TOKEN_BYTES` bytes from :mod:`secrets`, URL-safe base64."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 of the token (hex): what is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def redact(text: str) -> str:
    """``text`` with every ``token=...`` value replaced by ``token=[redacted]``."""
    return _TOKEN_IN_TEXT.sub(r"\1[redacted]", text)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token allows: a role in a session (None for admin), as a participant."""

    role: Role
    session: str | None
    participant: str | None = None


@dataclass(frozen=True, slots=True)
class ServedSession:
    """A session ``vagus serve`` hosts: kept across restarts until ended.

    ``participants`` maps each name to its source spec (``relay``, ``sim[:...]`` or a
    strap address or name).
    """

    session: str
    title: str | None
    participants: tuple[tuple[str, str], ...]
    created_unix_s: float
    ended: bool = False


class TokenStore:
    """Token hashes and served sessions in SQLite (``path``; ``":memory:"`` for none).

    Thread-safe (one lock); every change is committed at once (a token handed out must
    survive a crash).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS tokens (
                    hash TEXT PRIMARY KEY, role TEXT NOT NULL, session TEXT,
                    participant TEXT, created_unix_s REAL NOT NULL,
                    revoked INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS served_sessions (
                    session TEXT PRIMARY KEY, title TEXT, participants TEXT NOT NULL,
                    created_unix_s REAL NOT NULL, ended INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS clock_offsets (
                    session TEXT NOT NULL, participant TEXT NOT NULL, offset_s REAL NOT NULL,
                    PRIMARY KEY (session, participant));
                """
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the service's token file {self.path}: {exc}; check that its "
                "folder is writable (--data-dir chooses another)"
            ) from None
        self._lock = threading.Lock()
        # Index: first 16 hex digits of the hash -> [(full hash, grant)]. The lookup by a
        # prefix of a SHA-256 tells an attacker nothing about the token; the full stored
        # hash is then compared in constant time.
        self._cache: dict[str, list[tuple[str, Grant]]] = {}
        self._load()

    def _load(self) -> None:
        rows = self._conn.execute(
            "SELECT hash, role, session, participant FROM tokens WHERE revoked = 0"
        ).fetchall()
        cache: dict[str, list[tuple[str, Grant]]] = {}
        for h, role, session, participant in rows:
            if role in ROLES:
                cache.setdefault(h[:16], []).append((h, Grant(role, session, participant)))
        self._cache = cache

    def issue(self, role: Role, session: str | None, participant: str | None = None) -> str:
        """Make a token for ``role`` in ``session`` (as ``participant``); store its hash."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        token = new_token()
        digest = hash_token(token)
        with self._lock:
            self._conn.execute(
                "INSERT INTO tokens (hash, role, session, participant, created_unix_s) "
                "VALUES (?, ?, ?, ?, ?)",
                (digest, role, session, participant, time.time()),
            )
            self._cache.setdefault(digest[:16], []).append(
                (digest, Grant(role, session, participant))
            )
        return token

    def check(self, token: str | None) -> Grant | None:
        """The grant of ``token``, or None for a missing, unknown or revoked one."""
        if not token or len(token) > 256:
            return None
        digest = hash_token(token)
        found: Grant | None = None
        for stored, grant in self._cache.get(digest[:16], ()):
            if hmac.compare_digest(stored, digest):
                found = grant
        return found

    def revoke_role(self, role: Role, session: str | None = None) -> None:
        """Revoke every token of ``role`` (in ``session``, if given)."""
        with self._lock:
            if session is None:
                self._conn.execute("UPDATE tokens SET revoked = 1 WHERE role = ?", (role,))
            else:
                self._conn.execute(
                    "UPDATE tokens SET revoked = 1 WHERE role = ? AND session = ?", (role, session)
                )
            self._load()

    def save_session(self, served: ServedSession) -> None:
        """Remember a served session (replacing an earlier entry)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO served_sessions "
                "(session, title, participants, created_unix_s, ended) VALUES (?, ?, ?, ?, ?)",
                (
                    served.session,
                    served.title,
                    json.dumps([list(p) for p in served.participants]),
                    served.created_unix_s,
                    int(served.ended),
                ),
            )

    def end_session(self, session: str) -> None:
        """Mark a served session ended (it is not restarted)."""
        with self._lock:
            self._conn.execute("UPDATE served_sessions SET ended = 1 WHERE session = ?", (session,))

    def served_sessions(self, *, include_ended: bool = False) -> list[ServedSession]:
        """Served sessions, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT session, title, participants, created_unix_s, ended "
                "FROM served_sessions ORDER BY created_unix_s"
            ).fetchall()
        out = []
        for session, title, participants, created, ended in rows:
            if ended and not include_ended:
                continue
            try:
                parts = tuple((str(n), str(s)) for n, s in json.loads(participants))
            except (ValueError, TypeError):
                continue
            out.append(ServedSession(session, title, parts, float(created), bool(ended)))
        return out

    def save_offset(self, session: str, participant: str, offset_s: float) -> None:
        """Remember a participant's source-to-session clock offset (a resumed session maps
        a relay's clock as before the restart)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO clock_offsets VALUES (?, ?, ?)",
                (session, participant, offset_s),
            )

    def offsets(self, session: str) -> dict[str, float]:
        """The saved clock offsets of a session's participants."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT participant, offset_s FROM clock_offsets WHERE session = ?", (session,)
            ).fetchall()
        return {str(p): float(o) for p, o in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
