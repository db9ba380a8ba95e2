"""The API's Postgres side: pooled, tenant-scoped reads and writes behind row-level security.

Every tenant call runs in one transaction as ``opscopilot_app`` with ``app.tenant`` set (see
``schemas/postgres/001_init.sql``), so a query cannot see another tenant's rows whatever its
WHERE clause says. The pool keeps connections open: a request costs a query, not a connect.

Incident lists page by an opaque cursor (the last row's sort key and id), stable under inserts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator, Optional, Sequence

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from sinks.postgres import APP_ROLE, INCIDENT_COLUMNS, INCIDENT_STATUSES, PostgresStoreError, redact_url

__all__ = ["ApiDatabase", "CursorError", "ROLES", "SORTS", "hash_token"]

ROLES = ("viewer", "responder", "approver", "admin")
# sort name -> (column, descending)
SORTS = {
    "-opened_at": ("opened_at", True),
    "opened_at": ("opened_at", False),
    "-updated_at": ("updated_at", True),
    "updated_at": ("updated_at", False),
}
_TIMELINE = "id, incident_id::text AS incident_id, at, kind, body, data"
_FILTERS = {"status": "status = %(status)s", "severity": "severity = %(severity)s",
            "service": "(service = %(service)s OR %(service)s = ANY(services))",
            "q": "title ILIKE %(q)s", "since": "opened_at >= %(since)s", "until": "opened_at < %(until)s"}


class CursorError(ValueError):
    """A page cursor that this API did not make, or made for another sort."""


def hash_token(token: str) -> bytes:
    """What is stored of an API token: its SHA-256 (tokens are 256-bit random, so no salt or
    slow hash is needed; nothing guessable is hashed)."""
    return hashlib.sha256(token.encode()).digest()


def _encode_cursor(sort: str, value: datetime, row_id: str) -> str:
    raw = json.dumps([sort, value.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, value, row_id = json.loads(raw)
        if got_sort != sort:
            raise CursorError(f"the cursor belongs to sort {got_sort!r}, not {sort!r}")
        return datetime.fromisoformat(value), uuid.UUID(row_id)
    except CursorError:
        raise
    except Exception:  # noqa: BLE001 - any decoding failure is the caller's bad cursor
        raise CursorError("the cursor is not one this API returned") from None


def _uuid(value: str) -> Optional[uuid.UUID]:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class ApiDatabase:
    """A connection pool to the incident store for the API process."""

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 12, timeout_s: float = 10.0) -> None:
        self.url = url
        self._timeout = timeout_s
        self.pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False,
                                   kwargs={"connect_timeout": 10}, name="opscopilot-api")

    def open(self) -> None:
        try:
            self.pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout as exc:
            raise PostgresStoreError(f"api: cannot connect to Postgres at {redact_url(self.url)}") from exc

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection(timeout=self._timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise PostgresStoreError("api: no Postgres connection free in time") from exc

    @contextmanager
    def tenant(self, tenant_id: str) -> Iterator[psycopg.Connection]:
        """A connection in a transaction as ``opscopilot_app``, scoped to ``tenant_id`` by RLS."""
        with self._conn() as conn:
            # one round trip: SET LOCAL ROLE and the tenant, both transaction-local
            conn.execute("SELECT set_config('role', %s, true), set_config('app.tenant', %s, true)",
                         (APP_ROLE, tenant_id))
            yield conn

    def ping(self) -> bool:
        with self._conn() as conn:
            return conn.execute("SELECT 1").fetchone()[0] == 1

    # -- tokens --------------------------------------------------------------------------
    def lookup_token(self, token: str) -> Optional[dict[str, Any]]:
        """The live token with this secret: ``token_id``, ``tenant_id``, ``role``, ``name``."""
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT set_config('role', %s, true)", (APP_ROLE,))
            cur.execute("SELECT token_id::text AS token_id, tenant_id, role, name"
                        " FROM api_token_lookup(%s)", (hash_token(token),))
            return cur.fetchone()

    def create_token(self, tenant_id: str, name: str, role: str, token: str, created_by: str = "") -> dict:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("INSERT INTO api_tokens (tenant_id, name, role, token_hash, created_by)"
                        " VALUES (%s, %s, %s, %s, %s)"
                        " RETURNING id::text AS id, name, role, created_at, created_by, revoked_at",
                        (tenant_id, name, role, hash_token(token), created_by))
            return cur.fetchone()

    def list_tokens(self, tenant_id: str) -> list[dict]:
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT id::text AS id, name, role, created_at, created_by, revoked_at"
                        " FROM api_tokens ORDER BY created_at, id")
            return cur.fetchall()

    def revoke_token(self, tenant_id: str, token_id: str) -> Optional[dict]:
        tid = _uuid(token_id)
        if tid is None:
            return None
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = %s"
                        " RETURNING id::text AS id, name, role, created_at, created_by, revoked_at", (tid,))
            return cur.fetchone()

    # -- idempotency ---------------------------------------------------------------------
    def idempotent_get(self, tenant_id: str, principal: str, key: str) -> Optional[dict]:
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT method, path, body_sha256, status, response FROM api_idempotency"
                        " WHERE principal = %s AND key = %s", (principal, key))
            return cur.fetchone()

    def idempotent_put(self, tenant_id: str, principal: str, key: str, method: str, path: str,
                       body_sha256: bytes, status: int, response: Any) -> None:
        with self.tenant(tenant_id) as conn:
            conn.execute("INSERT INTO api_idempotency (tenant_id, principal, key, method, path, body_sha256,"
                         " status, response) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (tenant_id, principal, key, method, path, body_sha256, status, Jsonb(response)))

    # -- incidents -----------------------------------------------------------------------
    def list_incidents(self, tenant_id: str, *, sort: str = "-opened_at", limit: int = 50,
                       cursor: Optional[str] = None, status: Optional[str] = None,
                       severity: Optional[str] = None, service: Optional[str] = None,
                       q: Optional[str] = None, since: Optional[datetime] = None,
                       until: Optional[datetime] = None) -> tuple[list[dict], Optional[str]]:
        """One page of incidents and the cursor of the next page (None at the end)."""
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        column, desc = SORTS[sort]
        where = ["TRUE"]
        params: dict[str, Any] = {"limit": limit + 1}
        if q:
            q = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for name, value in (("status", status), ("severity", severity), ("service", service), ("q", q),
                            ("since", since), ("until", until)):
            if value:
                where.append(_FILTERS[name])
                params[name] = value
        if cursor:
            params["cv"], params["cid"] = _decode_cursor(cursor, sort)
            where.append(f"({column}, id) {'<' if desc else '>'} (%(cv)s, %(cid)s)")
        order = "DESC" if desc else "ASC"
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {' AND '.join(where)}"
                        f" ORDER BY {column} {order}, id {order} LIMIT %(limit)s", params)
            rows = cur.fetchall()
        nxt = None
        if len(rows) > limit:
            rows = rows[:limit]
            nxt = _encode_cursor(sort, rows[-1][column], rows[-1]["id"])
        return rows, nxt

    def get_incident(self, tenant_id: str, incident_id: str) -> Optional[dict]:
        iid = _uuid(incident_id)
        if iid is None:
            return None
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = %s", (iid,))
            return cur.fetchone()

    def declare_incident(self, tenant_id: str, title: str, severity: str, service: Optional[str],
                         summary: Optional[str], by: str) -> dict:
        """A person declares an incident: the row and its first timeline entry, in one go."""
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("INSERT INTO incidents (tenant_id, title, severity, service, root_service, services, summary)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING " + INCIDENT_COLUMNS,
                        (tenant_id, title, severity, service, service, [service] if service else [], summary))
            row = cur.fetchone()
            cur.execute("INSERT INTO incident_timeline (tenant_id, incident_id, kind, body, data)"
                        " VALUES (%s, %s, 'declared', %s, %s)",
                        (tenant_id, row["id"], f"declared by {by}: {title}", Jsonb({"by": by})))
            return row

    def set_status(self, tenant_id: str, incident_id: str, status: str, note: str, by: str) -> Optional[dict]:
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(INCIDENT_STATUSES)}")
        iid = _uuid(incident_id)
        if iid is None:
            return None
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("UPDATE incidents SET status = %(s)s, resolved_at = CASE WHEN %(s)s = 'resolved'"
                        " THEN COALESCE(resolved_at, now()) END WHERE id = %(id)s RETURNING " + INCIDENT_COLUMNS,
                        {"s": status, "id": iid})
            row = cur.fetchone()
            if row is not None:
                body = f"{by} set status {status}" + (f": {note}" if note else "")
                cur.execute("INSERT INTO incident_timeline (tenant_id, incident_id, kind, body, data)"
                            " VALUES (%s, %s, 'status', %s, %s)",
                            (tenant_id, iid, body, Jsonb({"by": by, "status": status})))
            return row

    def confirm_tag(self, tenant_id: str, incident_id: str, change_id: Optional[str], note: str,
                    by: str) -> Optional[dict]:
        """An approver confirms the culprit change (or that no change caused it)."""
        iid = _uuid(incident_id)
        if iid is None:
            return None
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("UPDATE incidents SET tag_change_id = %s WHERE id = %s RETURNING " + INCIDENT_COLUMNS,
                        (change_id, iid))
            row = cur.fetchone()
            if row is not None:
                what = f"change {change_id}" if change_id else "no change"
                cur.execute("INSERT INTO incident_timeline (tenant_id, incident_id, kind, body, data)"
                            " VALUES (%s, %s, 'confirmed', %s, %s)",
                            (tenant_id, iid, f"{by} confirmed the cause: {what}" + (f" ({note})" if note else ""),
                             Jsonb({"by": by, "change_id": change_id})))
            return row

    @contextmanager
    def _incident(self, tenant_id: str, incident_id: str) -> Iterator[tuple]:
        """(cursor in the tenant's transaction, the incident's UUID), or (None, None) when the
        tenant has no such incident."""
        iid = _uuid(incident_id)
        if iid is None:
            yield None, None
            return
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT 1 FROM incidents WHERE id = %s", (iid,))
            yield (cur, iid) if cur.fetchone() else (None, None)

    def add_note(self, tenant_id: str, incident_id: str, body: str, by: str) -> Optional[dict]:
        with self._incident(tenant_id, incident_id) as (cur, iid):
            if cur is None:
                return None
            cur.execute("INSERT INTO incident_timeline (tenant_id, incident_id, kind, body, data)"
                        " VALUES (%s, %s, 'note', %s, %s) RETURNING " + _TIMELINE,
                        (tenant_id, iid, body, Jsonb({"by": by})))
            return cur.fetchone()

    def timeline(self, tenant_id: str, incident_id: str, *, after_id: int = 0,
                 limit: int = 500) -> Optional[list[dict]]:
        """Entries in id order after ``after_id``; None if the tenant has no such incident."""
        with self._incident(tenant_id, incident_id) as (cur, iid):
            if cur is None:
                return None
            cur.execute(f"SELECT {_TIMELINE} FROM incident_timeline WHERE incident_id = %s AND id > %s"
                        " ORDER BY id LIMIT %s", (iid, after_id, limit))
            return cur.fetchall()

    def timeline_entries(self, tenant_id: str, ids: Sequence[int]) -> list[dict]:
        """The tenant's timeline entries with these ids (the SSE hub's fetch after a NOTIFY)."""
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_TIMELINE} FROM incident_timeline WHERE id = ANY(%s) ORDER BY id", (list(ids),))
            return cur.fetchall()

    def tenant_timeline(self, tenant_id: str, *, after_id: int = 0, limit: int = 500) -> list[dict]:
        """The tenant's entries across incidents after ``after_id`` (the tenant-wide stream)."""
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"SELECT {_TIMELINE} FROM incident_timeline WHERE id > %s ORDER BY id LIMIT %s",
                        (after_id, limit))
            return cur.fetchall()

    def newest_timeline_id(self, tenant_id: str) -> int:
        with self.tenant(tenant_id) as conn:
            return int(conn.execute("SELECT COALESCE(max(id), 0) FROM incident_timeline").fetchone()[0])
