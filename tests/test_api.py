"""The incident API over a real HTTP server (uvicorn on loopback), real Postgres 18 (RLS,
LISTEN/NOTIFY) and the real ClickHouse engine: every route with every role and a foreign tenant,
request hygiene, idempotency, rate and size limits, SSE resume / heartbeat / slow-client drop,
OIDC JWTs verified against a JWKS served over HTTP, and schemathesis over the OpenAPI."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from api.context import RequestIdFilter
from api.server import BackgroundServer
from opscopilot.cli_api import make_token
from opscopilot.settings import Settings
from operators.topology import EdgeEvent
from schemas.batch import SignalBatch
from schemas.validate import validate_record
from sinks.clickhouse import ClickHouseStore

ROLES = ("viewer", "responder", "approver", "admin")
T0 = 1_767_000_000_000  # event times of the seeded signals


class Api:
    """A running server, two tenants with a token per role, and one incident of tenant A."""

    def __init__(self, pg_store, store: ClickHouseStore, **settings) -> None:
        self.settings = Settings.from_env({}).with_overrides(**settings)
        self.server = BackgroundServer(self.settings, pg_store.url, store, host="127.0.0.1", port=0).start()
        self.url = f"http://127.0.0.1:{self.server.port}"
        suffix = uuid.uuid4().hex[:8]
        self.a, self.b = f"acme{suffix}", f"globex{suffix}"
        self.tokens = {(t, r): make_token(pg_store, t, r, f"{t}-{r}") for t in (self.a, self.b) for r in ROLES}
        self.http = httpx.Client(base_url=self.url, timeout=20)
        r = self.post("/v1/incidents", self.a, "responder",
                      json={"title": "checkout errors", "severity": "high", "service": "db"})
        assert r.status_code == 201, r.text
        self.incident = r.json()

    def h(self, tenant: str, role: str, **extra) -> dict:
        return {"Authorization": f"Bearer {self.tokens[(tenant, role)]}", **extra}

    def get(self, path: str, tenant: str, role: str, **kw) -> httpx.Response:
        return self.http.get(path, headers=self.h(tenant, role, **kw.pop("headers", {})), **kw)

    def post(self, path: str, tenant: str, role: str, **kw) -> httpx.Response:
        return self.http.post(path, headers=self.h(tenant, role, **kw.pop("headers", {})), **kw)

    def close(self) -> None:
        self.http.close()
        self.server.stop()


def seed(store: ClickHouseStore, tenant: str) -> None:
    """An hour of error_rate for db and api, a deploy, and a small service graph."""
    now = int(time.time() * 1000)  # ingest time: the retention TTL counts from it
    rows = []
    for i in range(360):
        for svc in ("db", "api"):
            rows.append(validate_record({"tenant": tenant, "kind": "metric", "service": svc, "name": "error_rate",
                                         "value": 0.5 if 200 <= i < 240 else 0.01, "ts": T0 + i * 10_000}, now, now))
    rows.append(validate_record({"tenant": tenant, "kind": "change", "service": "db", "change_id": "chg-1",
                                 "change_type": "deploy", "version": "v2", "ts": T0 + 1_900_000,
                                 "body": "deploy db v2"}, now, now))
    store.write(SignalBatch(rows, []))
    store.write_topology_events(tenant, [EdgeEvent(T0, "api", "db", "observed", 10.0),
                                         EdgeEvent(T0, "web", "api", "observed", 20.0)])


@contextmanager
def seeded_api(pg_store, chdb_url: str, **settings):
    """A running Api over its own ClickHouse database, seeded, with the rate limit out of the way."""
    store = ClickHouseStore(chdb_url, f"api_{uuid.uuid4().hex[:8]}")
    store.migrate()
    a = Api(pg_store, store, api_rate_per_s=100_000.0, api_burst=100_000, **settings)
    try:
        seed(store, a.a)
        yield a
    finally:
        a.close()
        store.drop_database()


@pytest.fixture(scope="module")
def api(pg_store, chdb_url):
    with seeded_api(pg_store, chdb_url) as a:
        yield a


# -- every route, every role, a foreign tenant ----------------------------------------------

def _routes(app):
    from api.app import PUBLIC_PATHS

    out = []
    for method, path, role in app.state.route_roles:
        assert role or path in PUBLIC_PATHS, f"{path} declares no role and is not public"
        if role:
            out.append((method, path, role))
    return out


def _call(api: Api, method: str, path: str, tenant: str, role: str) -> httpx.Response:
    ids = {"incident_id": api.incident["id"], "cluster_id": "c0ffee", "service": "db"}
    if path == "/v1/tokens/{token_id}":  # revoke a throwaway token of tenant A
        victim = api.post("/v1/tokens", api.a, "admin", json={"name": "victim", "role": "viewer"}).json()
        ids["token_id"] = victim["id"]
    url = path.format(**ids)
    headers = api.h(tenant, role)
    params = {"service": "db", "name": "error_rate", "q": "x"} if path in ("/v1/series", "/v1/clusters/search") else {}
    bodies = {"/v1/incidents": {"title": "declared in the matrix"},
              "/v1/incidents/{incident_id}/status": {"status": "mitigated", "note": "matrix"},
              "/v1/incidents/{incident_id}/notes": {"body": "matrix note"},
              "/v1/incidents/{incident_id}/confirm": {"change_id": "chg-1"},
              "/v1/tokens": {"name": "matrix", "role": "viewer"}}
    if path.endswith("/stream"):
        with api.http.stream(method, url, headers=headers, params={"after_id": 0}, timeout=10) as r:
            if r.status_code == 200:  # the first event arrives: the stream works
                next(line for line in r.iter_lines() if line.startswith(("id:", ":")))
            else:
                r.read()
            return r
    return api.http.request(method, url, headers=headers, params=params, json=bodies.get(path))


# routes whose answer to a foreign tenant is 404 (the resource is A's); the others answer 200
# with the foreign tenant's own (empty) data
FOREIGN_404 = {"/v1/incidents/{incident_id}", "/v1/incidents/{incident_id}/status",
               "/v1/incidents/{incident_id}/notes", "/v1/incidents/{incident_id}/confirm",
               "/v1/incidents/{incident_id}/timeline", "/v1/incidents/{incident_id}/timeline/stream",
               "/v1/incidents/{incident_id}/blast-radius", "/v1/tokens/{token_id}", "/v1/topology/radius/{service}"}


def test_every_route_with_every_role_and_a_foreign_tenant(api):
    routes = _routes(api.server.app)
    assert len(routes) >= 20
    seen_a = {api.incident["id"], "chg-1", "checkout errors"}  # what only tenant A has
    for method, path, required in routes:
        for role in ROLES:
            r = _call(api, method, path, api.a, role)
            allowed = ROLES.index(role) >= ROLES.index(required)
            if allowed:
                assert r.status_code in (200, 201), (method, path, role, r.status_code, r.text)
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
                assert r.headers["content-type"] == "application/problem+json"
        r = _call(api, method, path, api.b, "admin")
        if path in FOREIGN_404:
            assert r.status_code == 404, (method, path, r.status_code, r.text)
        else:
            assert r.status_code in (200, 201), (method, path, r.status_code)
            if r.headers["content-type"].startswith("application/json") and path != "/v1/me":
                text = r.text
                assert not any(f'"{x}"' in text for x in seen_a), (path, text[:300])
                if path in ("/v1/series", "/v1/metrics/names", "/v1/topology", "/v1/changes"):
                    body = r.json()
                    assert not (body["series"] if path == "/v1/series" else
                                body["edges"] if path == "/v1/topology" else body), (path, text[:300])
        anon = api.http.request(method, path.format(incident_id=api.incident["id"], cluster_id="c", service="db",
                                                    token_id=str(uuid.uuid4())))
        assert anon.status_code == 401 and anon.headers["www-authenticate"].startswith("Bearer")


def test_rls_in_the_database_not_only_in_python(api):
    """A connection scoped to tenant B sees none of A's rows even when it asks for them."""
    db = api.server.app.state.api.db
    with db.tenant(api.b) as conn:
        assert conn.execute("SELECT count(*) FROM incidents WHERE tenant_id = %s", (api.a,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM api_tokens WHERE tenant_id = %s", (api.a,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM api_tokens").fetchone()[0] >= len(ROLES)
        assert conn.execute("SELECT count(*) FROM api_token_lookup('\\x00'::bytea)").fetchone()[0] == 0
        with pytest.raises(Exception, match="row-level security"):
            conn.execute("INSERT INTO incidents (tenant_id, title) VALUES (%s, 'forged')", (api.a,))


# -- request hygiene --------------------------------------------------------------------------

class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"[{record.request_id}] {record.getMessage()}")


def test_request_ids_secrets_and_problem_details(api):
    handler = _Collect()
    logger = logging.getLogger("opscopilot.api")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        r = api.get("/v1/incidents", api.a, "viewer", headers={"X-Request-ID": "req-42"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
        made = api.get("/v1/incidents", api.a, "viewer").headers["x-request-id"]
        assert len(made) == 32
        bad = api.http.get("/v1/incidents", headers={"Authorization": "Bearer oc_not-a-real-secret"})
        assert bad.status_code == 401 and bad.json()["request_id"] == bad.headers["x-request-id"]
        assert "oc_not-a-real-secret" not in bad.text
        tokens = api.get("/v1/tokens", api.a, "admin")
        assert not any(secret in tokens.text for secret in api.tokens.values())
        assert "token_hash" not in tokens.text and "token" not in tokens.json()[0]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any(line.startswith("[req-42] GET /v1/incidents 200") for line in handler.lines), handler.lines
    assert any(line.startswith(f"[{made}]") for line in handler.lines)
    assert not any(s in line for line in handler.lines for s in api.tokens.values())
    problem = api.get("/v1/incidents", api.a, "viewer", params={"limit": 0}).json()
    assert problem["status"] == 422 and problem["title"] and "limit" in problem["detail"]
    assert api.get("/v1/incidents", api.a, "viewer", params={"cursor": "garbage"}).status_code == 422


def test_idempotency_keys(api):
    body = {"title": "idempotent", "severity": "low"}
    first = api.post("/v1/incidents", api.a, "responder", json=body, headers={"Idempotency-Key": "k-1"})
    again = api.post("/v1/incidents", api.a, "responder", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = api.post("/v1/incidents", api.a, "responder", json={**body, "title": "else"},
                     headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    # keys are per caller: another principal's k-1 is its own
    theirs = api.post("/v1/incidents", api.a, "admin", json={**body, "title": "else"},
                      headers={"Idempotency-Key": "k-1"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    titles = [i["title"] for i in api.get("/v1/incidents", api.a, "viewer", params={"q": "idempotent"}).json()["items"]]
    assert titles == ["idempotent"]
    # a token's secret is never stored: the replay returns the record without it
    made = api.post("/v1/tokens", api.a, "admin", json={"name": "once", "role": "viewer"},
                    headers={"Idempotency-Key": "tok-1"})
    replay = api.post("/v1/tokens", api.a, "admin", json={"name": "once", "role": "viewer"},
                      headers={"Idempotency-Key": "tok-1"})
    assert made.json()["token"].startswith("oc_") and replay.json()["token"] == ""
    assert replay.json()["id"] == made.json()["id"]


def test_size_limit(api):
    big = {"title": "x", "summary": "y" * 100_000}
    r = api.post("/v1/incidents", api.a, "responder", json=big)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b" " * 1024

    r = api.http.post("/v1/incidents", content=chunks(), headers=api.h(api.a, "responder", **{
        "Content-Type": "application/json"}))
    assert r.status_code == 413


def test_incident_list_filters_sort_and_cursor_pages(api):
    for i in range(7):
        api.post("/v1/incidents", api.a, "responder", json={"title": f"page-{i}", "severity": "low", "service": "svc"})
    seen, cursor = [], None
    while True:
        page = api.get("/v1/incidents", api.a, "viewer",
                       params={"q": "page-", "limit": 3, "sort": "opened_at", **({"cursor": cursor} if cursor else {})})
        body = page.json()
        seen += [i["title"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"page-{i}" for i in range(7)]
    newest = api.get("/v1/incidents", api.a, "viewer", params={"q": "page-", "limit": 2}).json()["items"]
    assert [i["title"] for i in newest] == ["page-6", "page-5"]
    assert api.get("/v1/incidents", api.a, "viewer", params={"service": "svc", "severity": "high"}).json()["items"] == []
    wrong_sort = api.get("/v1/incidents", api.a, "viewer", params={"q": "page-", "cursor": cursor or "x"})
    assert wrong_sort.status_code == 422


def test_signal_reads_for_charts(api):
    s = api.get("/v1/series", api.a, "viewer", params={"service": "db", "name": "error_rate", "since": T0,
                                                        "until": T0 + 3_600_000, "points": 60}).json()
    pts = s["series"][0]["points"]
    assert len(pts) <= 60 and max(p["max"] for p in pts) == 0.5 and min(p["min"] for p in pts) == 0.01
    changes = api.get("/v1/changes", api.a, "viewer", params={"since": T0, "until": T0 + 3_600_000}).json()
    assert [c["change_id"] for c in changes] == ["chg-1"]
    names = api.get("/v1/metrics/names", api.a, "viewer").json()
    assert {(n["service"], n["name"]) for n in names} == {("db", "error_rate"), ("api", "error_rate")}
    radius = api.get("/v1/topology/radius/db", api.a, "viewer").json()
    assert [r["service"] for r in radius][:1] == ["api"]
    br = api.get(f"/v1/incidents/{api.incident['id']}/blast-radius", api.a, "viewer").json()
    assert {(e["caller"], e["callee"]) for e in br["edges"]} >= {("api", "db")}


def test_rate_limit(pg_store, store):
    limited = Api(pg_store, store, api_rate_per_s=1.0, api_burst=3)
    try:
        codes = [limited.get("/v1/me", limited.a, "viewer") for _ in range(5)]
        assert [r.status_code for r in codes[:2]] == [200, 200]  # (the fixture's POST took one)
        assert codes[-1].status_code == 429 and int(codes[-1].headers["retry-after"]) >= 1
        assert limited.get("/v1/me", limited.b, "viewer").status_code == 200  # per token
        time.sleep(1.1)
        assert limited.get("/v1/me", limited.a, "viewer").status_code == 200
    finally:
        limited.close()


# -- SSE --------------------------------------------------------------------------------------

_LINES: dict = {}


def _read_events(response, n: int, timeout: float = 15) -> list[dict]:
    """The next ``n`` events of an SSE response (one line iterator per response)."""
    lines = _LINES.setdefault(id(response), response.iter_lines())
    out, cur = [], {}
    deadline = time.monotonic() + timeout
    for line in lines:
        assert time.monotonic() < deadline, "timed out waiting for events"
        if line.startswith(":"):
            cur.setdefault("comments", 0)
            continue
        if line == "":
            if "event" in cur:
                out.append(cur)
                if len(out) >= n:
                    return out
            cur = {}
            continue
        k, _, v = line.partition(":")
        cur[k] = v.strip()
    return out


def test_sse_resume_without_gaps_or_duplicates(api):
    inc = api.post("/v1/incidents", api.a, "responder", json={"title": "sse resume"}).json()
    path = f"/v1/incidents/{inc['id']}/timeline/stream"
    with api.http.stream("GET", path, headers=api.h(api.a, "viewer")) as r:
        first = _read_events(r, 1)  # the 'declared' entry, from the backlog
        assert first[0]["event"] == "timeline" and json.loads(first[0]["data"])["kind"] == "declared"
        for i in range(5):
            api.post(f"/v1/incidents/{inc['id']}/notes", api.a, "responder", json={"body": f"n{i}"})
        got = _read_events(r, 3)
    last = got[-1]["id"]
    for i in range(5, 8):
        api.post(f"/v1/incidents/{inc['id']}/notes", api.a, "responder", json={"body": f"n{i}"})
    with api.http.stream("GET", path, headers=api.h(api.a, "viewer", **{"Last-Event-ID": last})) as r:
        rest = _read_events(r, 5)
    bodies = [json.loads(e["data"])["body"] for e in got + rest]
    assert bodies == [f"n{i}" for i in range(8)]
    ids = [int(e["id"]) for e in first + got + rest]
    assert ids == sorted(set(ids))


def test_tenant_stream_is_live_and_isolated(api):
    with api.http.stream("GET", "/v1/stream", headers=api.h(api.b, "viewer")) as theirs, \
            api.http.stream("GET", "/v1/stream", headers=api.h(api.a, "viewer")) as ours:
        time.sleep(0.3)
        made = api.post("/v1/incidents", api.a, "responder", json={"title": "live one"}).json()
        api.post("/v1/incidents", api.b, "responder", json={"title": "theirs"})
        event = _read_events(ours, 1)[0]
        assert json.loads(event["data"])["incident_id"] == made["id"]
        other = json.loads(_read_events(theirs, 1)[0]["data"])
        assert other["body"].endswith("theirs")


def test_sse_heartbeats_and_slow_clients_are_dropped(pg_store, store):
    small = Api(pg_store, store, sse_buffer=5, sse_heartbeat_s=0.2)
    try:
        inc = small.incident["id"]
        with small.http.stream("GET", f"/v1/incidents/{inc}/timeline/stream", headers=small.h(small.a, "viewer")) as r:
            lines = []
            for line in _LINES.setdefault(id(r), r.iter_lines()):
                lines.append(line)
                if sum(1 for x in lines if x.startswith(":")) >= 2:
                    break
            assert any(x.startswith(":") for x in lines)  # heartbeats as SSE comments
            # stop reading: the sockets' buffers fill (loopback takes some MB), then the queue of 5
            payload = "z" * 40_000
            db = small.server.app.state.api.db
            for i in range(1500):
                db.add_note(small.a, inc, f"{i} {payload}", "test")
            events = _read_events(r, 10_000, timeout=60)
        assert events[-1]["event"] == "dropped" and "too slow" in json.loads(events[-1]["data"])["reason"]
        assert len(events) < 1500
        hub = small.server.app.state.api.hub
        deadline = time.monotonic() + 5
        while hub._subs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not hub._subs  # the dropped client's buffer is gone
    finally:
        small.close()


# -- OIDC -------------------------------------------------------------------------------------

class _Jwks(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_oidc_jwts_against_a_jwks_over_http(pg_store, store):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    _Jwks.body = json.dumps({"keys": [jwk]}).encode()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    oidc = Api(pg_store, store, oidc_jwks=f"http://127.0.0.1:{httpd.server_port}/jwks.json",
               oidc_issuer="https://idp.test", oidc_audience="opscopilot")
    try:
        def token(roles, signer=key, **claims):
            body = {"sub": "alice", "iss": "https://idp.test", "aud": "opscopilot", "exp": int(time.time()) + 300,
                    "opscopilot_roles": roles, **claims}
            return jwt.encode(body, signer, algorithm="RS256", headers={"kid": "k1"})

        def me(tok, **headers):
            return oidc.http.get("/v1/me", headers={"Authorization": f"Bearer {tok}", **headers})

        ok = me(token({oidc.a: "responder"}))
        assert ok.status_code == 200 and ok.json() == {"tenant": oidc.a, "role": "responder", "subject": "alice",
                                                        "via": "oidc"}
        assert me(token({oidc.a: "viewer"})).status_code == 200
        viewer = token({oidc.a: "viewer"})
        assert oidc.http.post("/v1/incidents", json={"title": "x"},
                              headers={"Authorization": f"Bearer {viewer}"}).status_code == 403
        both = token({oidc.a: "viewer", oidc.b: "admin"})
        assert me(both).status_code == 403
        assert me(both, **{"X-Opscopilot-Tenant": oidc.b}).json()["role"] == "admin"
        assert me(token({oidc.a: "viewer"}, signer=stranger)).status_code == 401
        assert me(token({oidc.a: "viewer"}, aud="someone-else")).status_code == 401
        assert me(token({oidc.a: "viewer"}, exp=int(time.time()) - 3600)).status_code == 401
        assert me(token({oidc.a: "overlord"})).status_code == 403
        # RLS still applies: an OIDC caller of B cannot read A's incident
        b_admin = token({oidc.b: "admin"})
        r = oidc.http.get(f"/v1/incidents/{oidc.incident['id']}", headers={"Authorization": f"Bearer {b_admin}"})
        assert r.status_code == 404
    finally:
        oidc.close()
        httpd.shutdown()


def test_metrics_exposition(api):
    text = api.get("/metrics", api.a, "admin").text
    for name in ("opscopilot_api_requests_total", "opscopilot_api_request_seconds_bucket", "opscopilot_sse_clients",
                 "opscopilot_dead_letters", "opscopilot_ingest_signals_per_second", "opscopilot_ingest_lag_seconds"):
        assert name in text, name


def test_health_and_readiness(api):
    assert api.http.get("/healthz").json()["status"] == "ok"
    ready = api.http.get("/readyz").json()
    assert ready == {"status": "ok", "checks": {"postgres": "ok", "clickhouse": "ok", "sse": "ok"}}


def test_timeline_ids_follow_commit_order(api):
    """Two writers of one tenant: the second waits for the first to commit before it gets its
    id, so 'after id N' never skips an entry that committed later (what SSE resume relies on)."""
    db = api.server.app.state.api.db
    inc = api.incident["id"]
    theirs = db.declare_incident(api.b, "another tenant's", "low", None, None, "test")["id"]
    first = db.pool.getconn()
    try:
        first.execute("SELECT set_config('role', 'opscopilot_app', true), set_config('app.tenant', %s, true)",
                      (api.a,))
        id1 = first.execute("INSERT INTO incident_timeline (tenant_id, incident_id, kind, body)"
                            " VALUES (%s, %s, 'note', 'first writer') RETURNING id", (api.a, inc)).fetchone()[0]
        second: dict = {}
        t = threading.Thread(target=lambda: second.update(db.add_note(api.a, inc, "second writer", "test")))
        t.start()
        t.join(0.5)
        assert t.is_alive(), "the second writer did not wait for the first one's commit"
        other = threading.Thread(target=lambda: db.add_note(api.b, theirs, "no wait", "test"))
        other.start()
        other.join(5)
        assert not other.is_alive(), "another tenant's writer waited"
        first.commit()
        t.join(10)
        assert second["id"] > id1
    finally:
        first.rollback()
        db.pool.putconn(first)
