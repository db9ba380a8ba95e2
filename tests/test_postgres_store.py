"""PostgresStore against a real embedded Postgres 18 + pgvector: migrations, RLS, NOTIFY."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from psycopg import errors
from psycopg.conninfo import make_conninfo

from sinks.postgres import (
    APP_ROLE,
    EMBEDDING_DIM,
    EmbeddedPostgres,
    PostgresStore,
    PostgresStoreError,
    load_migrations,
    open_postgres,
    redact_url,
)

TENANT_TABLES = ("tenants", "incidents", "incident_timeline")


@pytest.fixture
def pg(pg_server):
    return pg_server  # the session's embedded server (tests/conftest.py)


@pytest.fixture
def store(pg_store):
    return pg_store


@pytest.fixture
def tenants(store):
    """Two fresh tenants (A, B), so row counts in a test see only that test's data."""
    suffix = uuid.uuid4().hex[:8]
    a, b = f"acme-{suffix}", f"globex-{suffix}"
    store.ensure_tenant(a, "Acme")
    store.ensure_tenant(b, "Globex")
    return a, b


def _fresh_database(pg, store) -> str:
    """Create an empty database on the test server; return a conninfo string for it."""
    name = f"db_{uuid.uuid4().hex[:12]}"
    with store.connect(autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return make_conninfo(pg.url, dbname=name)


def _unit(i: int, scale: float = 1.0) -> list[float]:
    vec = [0.0] * EMBEDDING_DIM
    vec[i] = scale
    return vec


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited but is not yet reaped; it counts as stopped.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# -- migrations ----------------------------------------------------------------------------


def test_migrations_apply_once_and_are_idempotent(pg, store):
    fresh = PostgresStore(_fresh_database(pg, store))
    expected = [m.name for m in load_migrations()]
    assert expected and expected[0] == "001_init.sql"

    assert fresh.migrate() == expected
    assert fresh.migrate() == []
    applied = fresh.applied_migrations()
    assert [(v, n) for v, n, _ in applied] == [(m.version, m.name) for m in load_migrations()]

    with fresh.connect() as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        assert set(TENANT_TABLES) | {"schema_migrations"} <= tables
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
        assert count == len(expected)


def test_concurrent_migrations_apply_each_file_once(pg, store):
    fresh = PostgresStore(_fresh_database(pg, store))
    results: list[list[str]] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(fresh.migrate())
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert failures == []
    applied = [name for names in results for name in names]
    assert sorted(applied) == sorted(m.name for m in load_migrations())
    assert len(fresh.applied_migrations()) == len(load_migrations())


def test_app_role_is_restricted_and_tables_force_rls(store):
    with store.connect() as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb"
            " FROM pg_roles WHERE rolname = %s",
            (APP_ROLE,),
        ).fetchone()
        assert role == (False, False, False, False, False)
        for table in TENANT_TABLES:
            rls, forced, owner = conn.execute(
                "SELECT c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)"
                " FROM pg_class c WHERE c.oid = %s::regclass",
                (table,),
            ).fetchone()
            assert (rls, forced) == (True, True), table
            assert owner != APP_ROLE
            privileges = {
                row[0]
                for row in conn.execute(
                    "SELECT privilege_type FROM information_schema.role_table_grants"
                    " WHERE grantee = %s AND table_name = %s",
                    (APP_ROLE, table),
                )
            }
            assert privileges == {"SELECT", "INSERT", "UPDATE", "DELETE"}, table
        assert not conn.execute(
            "SELECT has_table_privilege(%s, 'schema_migrations', 'SELECT')", (APP_ROLE,)
        ).fetchone()[0]


def test_app_role_cannot_disable_rls(store, tenants):
    a, _ = tenants
    with pytest.raises(errors.InsufficientPrivilege):
        with store.tenant(a) as conn:
            conn.execute("ALTER TABLE incidents DISABLE ROW LEVEL SECURITY")
    # row_security=off makes a policy-filtered query fail instead of returning everything.
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with store.tenant(a) as conn:
            conn.execute("SET LOCAL row_security = off")
            conn.execute("SELECT count(*) FROM incidents").fetchone()


# -- pgvector ------------------------------------------------------------------------------


def test_pgvector_nearest_neighbour_order(store, tenants):
    a, b = tenants
    far = store.create_incident(a, "disk full", embedding=_unit(0, 10.0))
    near = store.create_incident(a, "api latency", embedding=_unit(1))
    mid = store.create_incident(a, "api errors", embedding=_unit(2, 3.0))
    store.create_incident(a, "no embedding")
    store.create_incident(b, "other tenant, identical vector", embedding=_unit(1))

    query = _unit(1, 0.9)
    hits = store.similar_incidents(a, query, limit=10)
    assert [h["id"] for h in hits] == [near, mid, far]
    assert hits[0]["distance"] == pytest.approx(0.1, abs=1e-6)
    assert hits[1]["distance"] == pytest.approx(math.sqrt(0.81 + 9.0), abs=1e-5)

    with store.tenant(a) as conn:
        rows = conn.execute(
            "SELECT id::text, vector_dims(embedding) FROM incidents"
            " WHERE embedding IS NOT NULL ORDER BY embedding <-> %s::vector LIMIT 1",
            ("[" + ",".join(map(str, query)) + "]",),
        ).fetchall()
    assert rows == [(near, EMBEDDING_DIM)]


def test_embedding_dimension_is_checked(store, tenants):
    a, _ = tenants
    with pytest.raises(ValueError, match="384"):
        store.create_incident(a, "short vector", embedding=[1.0, 2.0])
    with pytest.raises(errors.DataException, match="384"):
        with store.tenant(a) as conn:
            conn.execute(
                "INSERT INTO incidents (tenant_id, title, embedding) VALUES (%s, 't', '[1,2]')",
                (a,),
            )


# -- row-level security --------------------------------------------------------------------


def test_tenant_cannot_read_update_or_delete_other_tenants_rows(store, tenants):
    a, b = tenants
    theirs = store.create_incident(b, "globex outage", severity="sev1", service="billing")
    entry = store.add_timeline_entry(b, theirs, "note", "secret", {"k": "v"})
    store.create_incident(a, "acme outage")

    def rows(conn, sql: str, *params) -> int:
        """Rows a statement returns (SELECT) or touches (UPDATE/DELETE)."""
        cur = conn.execute(sql, params)
        return len(cur.fetchall()) if cur.description else cur.rowcount

    with store.tenant(a) as conn:
        assert rows(conn, "SELECT id FROM incidents WHERE id = %s", theirs) == 0
        assert rows(conn, "SELECT id FROM incidents WHERE tenant_id = %s", b) == 0
        assert rows(conn, "SELECT id FROM incident_timeline WHERE id = %s", entry) == 0
        assert [r[0] for r in conn.execute("SELECT id FROM tenants")] == [a]

        assert rows(conn, "UPDATE incidents SET title = 'pwned' WHERE id = %s", theirs) == 0
        assert rows(conn, "UPDATE incident_timeline SET body = 'pwned' WHERE id = %s", entry) == 0
        assert rows(conn, "UPDATE tenants SET name = 'pwned' WHERE id = %s", b) == 0
        assert rows(conn, "DELETE FROM incident_timeline WHERE id = %s", entry) == 0
        assert rows(conn, "DELETE FROM incidents WHERE id = %s", theirs) == 0
        assert rows(conn, "DELETE FROM tenants WHERE id = %s", b) == 0
        # Control: the same statements do reach the tenant's own rows.
        assert rows(conn, "SELECT id FROM incidents") == 1
        assert rows(conn, "UPDATE incidents SET severity = 'sev2'") == 1

    assert store.get_incident(a, theirs) is None
    assert store.timeline(a, theirs) == []
    assert [i["title"] for i in store.list_incidents(a)] == ["acme outage"]

    mine = store.get_incident(b, theirs)
    assert mine is not None and (mine["title"], mine["severity"], mine["service"]) == (
        "globex outage",
        "sev1",
        "billing",
    )
    assert [(e["body"], e["data"]) for e in store.timeline(b, theirs)] == [("secret", {"k": "v"})]


def test_tenant_cannot_insert_or_move_rows_into_other_tenant(store, tenants):
    a, b = tenants
    mine = store.create_incident(a, "acme outage")
    theirs = store.create_incident(b, "globex outage")

    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with store.tenant(a) as conn:
            conn.execute("INSERT INTO incidents (tenant_id, title) VALUES (%s, 'forged')", (b,))
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with store.tenant(a) as conn:
            conn.execute("UPDATE incidents SET tenant_id = %s WHERE id = %s", (b, mine))
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with store.tenant(a) as conn:
            conn.execute(
                "INSERT INTO incident_timeline (tenant_id, incident_id, kind) VALUES (%s, %s, 'x')",
                (b, theirs),
            )
    # Own tenant id but another tenant's incident: the composite foreign key refuses it.
    with pytest.raises(errors.ForeignKeyViolation):
        store.add_timeline_entry(a, theirs, "note", "forged")

    assert [i["title"] for i in store.list_incidents(b)] == ["globex outage"]
    assert store.timeline(b, theirs) == []
    assert store.get_incident(a, mine)["tenant_id"] == a


def test_app_role_without_tenant_setting_sees_nothing(store, tenants):
    a, _ = tenants
    incident = store.create_incident(a, "visible to owner only")
    store.add_timeline_entry(a, incident, "note")

    with store.connect() as conn:
        owner_count = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        assert owner_count >= 1
        conn.execute(f"SET ROLE {APP_ROLE}")
        assert conn.execute("SELECT current_setting('app.tenant', true)").fetchone()[0] is None
        for table in TENANT_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        assert conn.execute("DELETE FROM incidents").rowcount == 0
        conn.rollback()
        # Empty once a transaction-local setting has expired in this session.
        conn.execute(f"SET ROLE {APP_ROLE}")
        conn.execute("SELECT set_config('app.tenant', %s, true)", (a,))
        assert conn.execute("SELECT count(*) FROM incidents").fetchone()[0] >= 1
        conn.commit()
        assert conn.execute("SELECT current_setting('app.tenant', true)").fetchone()[0] == ""
        assert conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0

    with pytest.raises(ValueError):
        with store.tenant(""):
            pass


def test_tenant_transaction_rolls_back_on_error(store, tenants):
    a, _ = tenants
    with pytest.raises(RuntimeError):
        with store.tenant(a) as conn:
            conn.execute("INSERT INTO incidents (tenant_id, title) VALUES (%s, 'doomed')", (a,))
            raise RuntimeError("boom")
    assert store.list_incidents(a) == []


# -- helpers -------------------------------------------------------------------------------


def test_incident_listing_status_and_timeline_order(store, tenants):
    a, _ = tenants
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    old = store.create_incident(a, "old", opened_at=t0)
    new = store.create_incident(a, "new", opened_at=t0 + timedelta(hours=1), service="api")
    assert [i["id"] for i in store.list_incidents(a)] == [new, old]

    assert store.set_incident_status(a, old, "resolved", at=t0 + timedelta(minutes=30))
    assert not store.set_incident_status(a, uuid.uuid4(), "resolved")
    resolved = store.list_incidents(a, status="resolved")
    assert [(i["id"], i["resolved_at"]) for i in resolved] == [(old, t0 + timedelta(minutes=30))]
    assert resolved[0]["updated_at"] > resolved[0]["created_at"]
    assert [i["id"] for i in store.list_incidents(a, status="open")] == [new]
    with pytest.raises(ValueError):
        store.set_incident_status(a, new, "closed")

    later = store.add_timeline_entry(a, new, "deploy", "v2", at=t0 + timedelta(minutes=5))
    first = store.add_timeline_entry(a, new, "alert", "p99 high", {"p99_ms": 812}, at=t0)
    entries = store.timeline(a, new)
    assert [(e["id"], e["kind"], e["at"]) for e in entries] == [
        (first, "alert", t0),
        (later, "deploy", t0 + timedelta(minutes=5)),
    ]
    assert entries[0]["data"] == {"p99_ms": 812} and entries[0]["incident_id"] == new


# -- LISTEN / NOTIFY -----------------------------------------------------------------------


def test_listen_receives_notify_on_timeline_insert(store, tenants):
    a, b = tenants
    incident = store.create_incident(a, "paged")
    other = store.create_incident(b, "elsewhere")

    with store.listen_timeline() as everyone, store.listen_timeline(tenant_id=a) as only_a:
        entry = store.add_timeline_entry(a, incident, "page", "PagerDuty fired")
        events = everyone.poll(timeout=5, max_events=1)
        assert len(events) == 1
        event = events[0]
        assert (event["id"], event["tenant_id"], event["incident_id"], event["kind"]) == (
            entry,
            a,
            incident,
            "page",
        )

        store.add_timeline_entry(b, other, "note")
        assert [e["tenant_id"] for e in everyone.poll(timeout=5, max_events=1)] == [b]
        assert [e["id"] for e in only_a.poll(timeout=1)] == [entry]

        # Nothing is sent for a rolled-back insert.
        with pytest.raises(RuntimeError):
            with store.tenant(a) as conn:
                conn.execute(
                    "INSERT INTO incident_timeline (tenant_id, incident_id, kind)"
                    " VALUES (%s, %s, 'x')",
                    (a, incident),
                )
                raise RuntimeError("abort")
        assert everyone.poll(timeout=0.5) == []


# -- errors and lifecycle ------------------------------------------------------------------


def test_unreachable_server_raises_clear_error_without_password(tmp_path):
    url = f"postgresql://app:s3cr3t-pw@/opscopilot?host={tmp_path / 'no-such-socket-dir'}"
    store = PostgresStore(url)
    with pytest.raises(PostgresStoreError, match="^migrate: cannot connect") as info:
        store.migrate()
    assert "s3cr3t-pw" not in str(info.value) and "***" in str(info.value)
    with pytest.raises(PostgresStoreError, match="tenant 'acme': cannot connect") as info:
        store.list_incidents("acme")
    assert "s3cr3t-pw" not in str(info.value)
    assert "s3cr3t-pw" not in repr(store)


def test_redact_url():
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db?password=pw&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert redact_url("host=h password=pw dbname=d") == "host=h password=*** dbname=d"
    assert redact_url("postgresql://postgres:@/postgres?host=/tmp/x") == (
        "postgresql://postgres:@/postgres?host=/tmp/x"
    )


def test_open_postgres_embedded_migrates_and_stops(tmp_path):
    store, embedded = open_postgres("", tmp_path)
    try:
        assert embedded is not None and embedded.data_dir == (tmp_path / "pg").resolve()
        pid = embedded.pid
        assert pid is not None and _pid_alive(pid)
        assert [n for _, n, _ in store.applied_migrations()] == [m.name for m in load_migrations()]
        store.ensure_tenant("t1", "Tenant one")
        incident = store.create_incident("t1", "hello")
        assert store.get_incident("t1", incident)["title"] == "hello"
    finally:
        embedded.stop()
    embedded.stop()  # idempotent
    assert embedded.pid is None
    assert not _pid_alive(pid)
    with pytest.raises(PostgresStoreError, match="cannot connect"):
        store.list_incidents("t1")

    # The data survives a restart in the same directory.
    with EmbeddedPostgres(tmp_path / "pg") as again:
        pid = again.pid
        restarted = PostgresStore(again.url)
        assert restarted.migrate() == []
        assert [i["title"] for i in restarted.list_incidents("t1")] == ["hello"]
    assert not _pid_alive(pid)


def test_server_left_by_killed_process_is_stopped_by_next_handle(tmp_path):
    data_dir = tmp_path / "pg"
    script = (
        "import sys, time\n"
        "from sinks.postgres import EmbeddedPostgres\n"
        "server = EmbeddedPostgres(sys.argv[1])\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        pid = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    try:
        assert _pid_alive(pid)  # outlived its killed parent
        with EmbeddedPostgres(data_dir) as adopted:
            assert adopted.pid == pid
            with PostgresStore(adopted.url).connect() as conn:
                assert conn.execute("SELECT 1").fetchone()[0] == 1
        assert not _pid_alive(pid)
    finally:
        if _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)


def test_open_postgres_with_url_uses_it(pg):
    store, embedded = open_postgres(pg.url, "/nonexistent-data-root", migrate=False)
    assert embedded is None
    with store.connect() as conn:
        assert conn.execute("SELECT 1").fetchone()[0] == 1
