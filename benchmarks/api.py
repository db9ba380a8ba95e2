"""``opscopilot bench api``: the API's latency under load and SSE delivery latency.

Set-up: an embedded Postgres seeded with one tenant's incidents (``--n``, default 2,000, each
with 20 timeline entries), and ``opscopilot serve`` in its own process (one uvicorn worker, the
access log on, as deployed; the per-token rate limit raised for the run). The load generator
runs in this process on the other core.

1. Open-loop load, ``RATE`` requests/s (200) for 20 s (--quick 5), after 3 s of the same load
   to reach steady state, on each of: the
   incident list (``GET /v1/incidents?limit=50``, the first page) and a timeline read
   (``GET /v1/incidents/{id}/timeline`` of a random incident). Requests go out on schedule
   whether or not earlier ones finished; latency is measured from the scheduled send time, so a
   stalled server is not hidden (no coordinated omission). p50 / p95 / p99.
   Baseline beside it: the same list read straight from Postgres by the store's own
   one-connection-per-call path (what the CLI does), at the same rate.
2. SSE: ``--clients`` (100) clients stream one incident's timeline; a writer commits an entry
   every 50 ms; delivery latency = time the client parsed the event - time the commit returned
   (one clock: writer and clients share this process). Baseline beside it: the same clients
   polling the JSON timeline once a second (the usual alternative to a push feed). The
   server's RSS is read before and after, to show its memory stays flat.
3. Slow clients, two rounds: a fifth as many clients connect and never read while 600 entries
   of 100 KB are committed; each must be dropped (``/metrics`` counts them). The queues share
   the fetched rows, so the server holds at most ``OPSCOPILOT_SSE_BUFFER`` entries' worth at once
   whatever the number of clients: RSS after round 2 must not exceed RSS after round 1.

JSON keys: ``sse_delivery_p95_s``, ``incident_list_p95_s``, ``timeline_read_p95_s``,
``sse_clients`` (and p50/p99s, rates achieved, errors, server RSS, baselines).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_json

ROOT = Path(__file__).resolve().parent.parent
RATE = 200


def _pct(xs: list, q: float):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 5) if xs else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def seed(pg_url: str, tenant: str, n: int, entries: int = 20) -> list[str]:
    """``n`` incidents with ``entries`` timeline entries each, in a few big transactions."""
    import psycopg
    from psycopg.types.json import Jsonb

    ids = []
    rng = random.Random(7)
    with psycopg.connect(pg_url) as conn:
        conn.execute("SELECT set_config('app.tenant', %s, false)", (tenant,))
        with conn.cursor() as cur:
            for i in range(n):
                svc = f"svc-{rng.randrange(60)}"
                cur.execute("INSERT INTO incidents (tenant_id, title, severity, service, root_service, services,"
                            " opened_at, suspects, blast_radius) VALUES (%s, %s, %s, %s, %s, %s,"
                            " now() - make_interval(mins => %s), %s, %s) RETURNING id::text",
                            (tenant, f"error_spike on {svc} (+{i % 9} services)", rng.choice(["high", "critical"]),
                             svc, svc, [svc, f"svc-{rng.randrange(60)}"], n - i,
                             Jsonb([{"change_id": f"chg-{i}", "service": svc, "change_type": "deploy",
                                     "version": "v1", "ts": 0, "likelihood": 0.7,
                                     "parts": {"onset_gap": 1.2, "same_service": 0.8}}]),
                             Jsonb([{"service": svc, "impact": {"error_rate": 0.3}}])))
                iid = cur.fetchone()[0]
                ids.append(iid)
                cur.executemany("INSERT INTO incident_timeline (tenant_id, incident_id, kind, body, data)"
                                " VALUES (%s, %s, %s, %s, %s)",
                                [(tenant, iid, "symptom", f"anomaly on {svc} #{k}", Jsonb({"k": k}))
                                 for k in range(entries)])
                if i % 500 == 499:
                    conn.commit()
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE incidents, incident_timeline")  # as autovacuum would, before the run
    return ids


class Server:
    """``opscopilot serve`` in a subprocess against the given Postgres."""

    def __init__(self, pg_url: str, data_dir: Path) -> None:
        self.port = _free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   OPSCOPILOT_POSTGRES_URL=pg_url, OPSCOPILOT_DATA_DIR=str(data_dir),
                   OPSCOPILOT_API_RATE="1000000", OPSCOPILOT_API_BURST="1000000")
        self.log = open(data_dir / "serve.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "opscopilot.cli", "serve", "--port", str(self.port)],
                                     env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opscopilot serve exited {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("opscopilot serve did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def open_loop(send, rate: float, seconds: float) -> tuple[list, int]:
    """Call ``send()`` ``rate`` times a second on schedule; latencies from the scheduled time."""
    lat, errors = [], 0
    n = int(rate * seconds)
    t0 = time.perf_counter() + 0.1

    async def one(at: float):
        nonlocal errors
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        try:
            ok = await send()
        except Exception:  # noqa: BLE001 - counted, not raised
            ok = False
        if ok:
            lat.append(time.perf_counter() - at)
        else:
            errors += 1

    await asyncio.gather(*(one(t0 + i / rate) for i in range(n)))
    return lat, errors


async def load_phase(url: str, token: str, ids: list, seconds: float) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    out = {}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
        rng = random.Random(1)

        async def list_page():
            r = await http.get("/v1/incidents", params={"limit": 50})
            return r.status_code == 200 and len(r.json()["items"]) == 50

        async def timeline():
            r = await http.get(f"/v1/incidents/{rng.choice(ids)}/timeline")
            return r.status_code == 200 and len(r.json()) >= 20

        for name, fn in (("incident_list", list_page), ("timeline_read", timeline)):
            # steady state, as a server in service is: 3 s of the same load first, not measured
            # (the pool opens its connections, their backends warm their caches)
            await open_loop(fn, RATE, 3.0)
            t0 = time.perf_counter()
            lat, errors = await open_loop(fn, RATE, seconds)
            took = time.perf_counter() - t0
            out[name] = {"p50_s": _pct(lat, 0.5), "p95_s": _pct(lat, 0.95), "p99_s": _pct(lat, 0.99),
                         "requests": len(lat) + errors, "errors": errors,
                         "rate_per_s": round((len(lat) + errors) / took, 1)}
    return out


def baseline_list(pg_url: str, tenant: str, seconds: float) -> dict:
    """The same first page, straight from Postgres through PostgresStore (a connection per call)."""
    from sinks.postgres import PostgresStore

    store = PostgresStore(pg_url)
    lat = []
    n = int(RATE * seconds)
    t0 = time.perf_counter()
    for i in range(n):
        at = t0 + i / RATE
        time.sleep(max(0.0, at - time.perf_counter()))
        store.list_incidents(tenant, limit=50)
        lat.append(time.perf_counter() - at)
    return {"p50_s": _pct(lat, 0.5), "p95_s": _pct(lat, 0.95), "p99_s": _pct(lat, 0.99),
            "rate_per_s": round(n / (time.perf_counter() - t0), 1)}


class _Writer:
    """Commits timeline entries on one connection and records when each commit returned."""

    def __init__(self, pg_url: str, tenant: str, incident: str) -> None:
        import psycopg

        self.conn = psycopg.connect(pg_url, autocommit=True)  # each entry its own transaction
        self.conn.execute("SELECT set_config('app.tenant', %s, false)", (tenant,))
        self.tenant, self.incident = tenant, incident
        self.committed: dict[int, float] = {}

    def one(self, body: str) -> None:
        with self.conn.transaction():
            eid = self.conn.execute("INSERT INTO incident_timeline (tenant_id, incident_id, kind, body)"
                                    " VALUES (%s, %s, 'note', %s) RETURNING id",
                                    (self.tenant, self.incident, body)).fetchone()[0]
        self.committed[eid] = time.perf_counter()

    async def run(self, n: int, label: str, every_s: float = 0.05) -> None:
        for i in range(n):
            await asyncio.to_thread(self.one, f"{label} {i}")
            await asyncio.sleep(every_s)


def _delays(received: list, committed: dict) -> list:
    return [t - committed[eid] for eid, t in received if eid in committed]


async def sse_phase(url: str, token: str, pg_url: str, tenant: str, clients: int, events: int,
                    server_pid: int) -> dict:
    import httpx

    from sinks.postgres import PostgresStore

    inc = PostgresStore(pg_url).create_incident(tenant, "SSE delivery benchmark", severity="high")
    writer = _Writer(pg_url, tenant, inc)
    received: list = []  # (entry id, time parsed), over all clients
    ready = 0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients + 8)
    rss_before = _rss_mb(server_pid)

    async def client(http):
        nonlocal ready
        got = 0
        async with http.stream("GET", f"/v1/incidents/{inc}/timeline/stream", headers=headers) as r:
            ready += 1
            ev_id = None
            async for line in r.aiter_lines():
                if line.startswith("id:"):
                    ev_id = int(line[3:])
                elif line == "" and ev_id is not None:
                    received.append((ev_id, time.perf_counter()))
                    got, ev_id = got + 1, None
                    if got >= events:
                        return

    async def write_when_ready():
        while ready < clients:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        await writer.run(events, "event")

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(60, read=60)) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(clients)]
        try:
            await asyncio.wait_for(asyncio.gather(write_when_ready(), *tasks), timeout=60 + events * 0.2)
        except asyncio.TimeoutError:
            raise RuntimeError(f"SSE phase timed out: {ready} of {clients} clients connected, "
                               f"{len(writer.committed)} entries written, {len(received)} received") from None
    rss_after = _rss_mb(server_pid)
    pushed = _delays(received, writer.committed)

    # baseline: the same clients polling the JSON timeline once a second, out of phase
    polled: list = []
    start_after = max(writer.committed)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
        stop = time.perf_counter() + 3 + events * 0.06

        async def poller():
            last = start_after
            await asyncio.sleep(random.random())
            while time.perf_counter() < stop:
                r = await http.get(f"/v1/incidents/{inc}/timeline", params={"after_id": last})
                now = time.perf_counter()
                for e in r.json():
                    last = e["id"]
                    polled.append((e["id"], now))
                await asyncio.sleep(1.0)

        async def write_later():
            await asyncio.sleep(1.5)
            await writer.run(events, "poll")

        await asyncio.gather(write_later(), *(poller() for _ in range(clients)))
    polled_delays = _delays([p for p in polled if p[0] > start_after], writer.committed)

    # slow clients: connected, never reading, while 60 MB of entries go by; each must be dropped
    # (its queue freed) and the server's memory must not grow with what they did not read
    slow = clients // 5
    rss_slow = [_rss_mb(server_pid)]
    big = "x" * 100_000
    for _round in range(2):  # twice: the second round shows whether memory keeps growing
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
            streams = []
            for _ in range(slow):
                cm = http.stream("GET", f"/v1/incidents/{inc}/timeline/stream",
                                 params={"after_id": max(writer.committed)})
                streams.append((cm, await cm.__aenter__()))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(lambda: [writer.one(f"big {i} {big}") for i in range(600)])
            await asyncio.sleep(2.0)
            rss_slow.append(_rss_mb(server_pid))
            metrics = (await http.get("/metrics")).text
            for cm, _ in streams:
                await cm.__aexit__(None, None, None)
    dropped = sum(float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith("opscopilot_sse_dropped_clients_total"))
    writer.conn.close()
    return {"sse_clients": clients, "sse_events": events, "sse_deliveries": len(pushed),
            "sse_delivery_p50_s": _pct(pushed, 0.5), "sse_delivery_p95_s": _pct(pushed, 0.95),
            "sse_delivery_p99_s": _pct(pushed, 0.99), "server_rss_mb_before_sse": round(rss_before, 1),
            "server_rss_mb_after_sse": round(rss_after, 1),
            "poll_1s_delivery_p50_s": _pct(polled_delays, 0.5), "poll_1s_delivery_p95_s": _pct(polled_delays, 0.95),
            "slow_clients": 2 * slow, "slow_clients_dropped": int(dropped),
            "server_rss_mb_before_slow": round(rss_slow[0], 1), "server_rss_mb_after_slow_round1": round(rss_slow[1], 1),
            "server_rss_mb_after_slow_round2": round(rss_slow[2], 1)}


def main(args) -> int:
    from opscopilot.cli_api import make_token
    from sinks.postgres import EmbeddedPostgres, PostgresStore

    n = args.n or (300 if args.quick else 2000)
    seconds = 5.0 if args.quick else 20.0
    clients = int(os.environ.get("OPSCOPILOT_BENCH_SSE_CLIENTS", 20 if args.quick else 100))
    events = 20 if args.quick else 100
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="opscopilot-api-"))
    work.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(work / "pg")
    server = None
    try:
        store = PostgresStore(pg.url)
        store.migrate()
        tenant = "bench"
        store.ensure_tenant(tenant, tenant)
        print(f"seeding {n:,} incidents x 20 timeline entries", file=sys.stderr)
        ids = seed(pg.url, tenant, n)
        token = make_token(store, tenant, "admin", "bench")
        server = Server(pg.url, work)
        server.wait_ready()
        print(f"load: {RATE} requests/s for {seconds:g} s on each of the list and a timeline read",
              file=sys.stderr)
        res = asyncio.run(load_phase(server.url, token, ids, seconds))
        print("baseline: the same list page through PostgresStore (a connection per call)", file=sys.stderr)
        base = baseline_list(pg.url, tenant, seconds)
        print(f"SSE: {clients} clients, {events} entries committed 50 ms apart", file=sys.stderr)
        sse = asyncio.run(sse_phase(server.url, token, pg.url, tenant, clients, events, server.proc.pid))
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    figures = {
        "incident_list_p50_s": res["incident_list"]["p50_s"], "incident_list_p95_s": res["incident_list"]["p95_s"],
        "incident_list_p99_s": res["incident_list"]["p99_s"],
        "incident_list_rate_per_s": res["incident_list"]["rate_per_s"],
        "incident_list_errors": res["incident_list"]["errors"],
        "timeline_read_p50_s": res["timeline_read"]["p50_s"], "timeline_read_p95_s": res["timeline_read"]["p95_s"],
        "timeline_read_p99_s": res["timeline_read"]["p99_s"],
        "timeline_read_rate_per_s": res["timeline_read"]["rate_per_s"],
        "timeline_read_errors": res["timeline_read"]["errors"],
        "baseline_store_list_p50_s": base["p50_s"], "baseline_store_list_p95_s": base["p95_s"],
        "incidents_seeded": n, **sse,
    }
    ms = lambda v: f"{v * 1000:8.1f} ms" if v is not None else "       -"  # noqa: E731
    print(f"\nAPI under load ({RATE} requests/s each, open loop, {seconds:g} s; {n:,} incidents):")
    print(f"  {'':<32}{'p50':>11}{'p95':>11}{'p99':>11}   rate / errors")
    for name in ("incident_list", "timeline_read"):
        r = res[name]
        print(f"  {name:<32}{ms(r['p50_s'])}{ms(r['p95_s'])}{ms(r['p99_s'])}   {r['rate_per_s']}/s, {r['errors']}")
    print(f"  {'baseline: store list, no API':<32}{ms(base['p50_s'])}{ms(base['p95_s'])}{ms(base['p99_s'])}   "
          f"{base['rate_per_s']}/s")
    print(f"SSE delivery, {clients} clients x {events} entries (commit -> event parsed):")
    print(f"  {'SSE (LISTEN/NOTIFY)':<32}{ms(sse['sse_delivery_p50_s'])}{ms(sse['sse_delivery_p95_s'])}"
          f"{ms(sse['sse_delivery_p99_s'])}   {sse['sse_deliveries']:,} deliveries")
    print(f"  {'baseline: polling every 1 s':<32}{ms(sse['poll_1s_delivery_p50_s'])}"
          f"{ms(sse['poll_1s_delivery_p95_s'])}")
    if sse["sse_delivery_p95_s"] and sse["poll_1s_delivery_p95_s"]:
        print(f"  ratio p95 SSE / polling: {sse['sse_delivery_p95_s'] / sse['poll_1s_delivery_p95_s']:.2f}")
    print(f"  server RSS {sse['server_rss_mb_before_sse']} MB before, {sse['server_rss_mb_after_sse']} MB after")
    print(f"slow clients (never read), two rounds of {sse['slow_clients'] // 2} while 60 MB of entries went by: "
          f"{sse['slow_clients_dropped']} of {sse['slow_clients']} dropped; server RSS "
          f"{sse['server_rss_mb_before_slow']} MB before, {sse['server_rss_mb_after_slow_round1']} MB after round 1, "
          f"{sse['server_rss_mb_after_slow_round2']} MB after round 2")
    print(f"targets: incident list p95 < 50 ms -> {figures['incident_list_p95_s'] is not None and figures['incident_list_p95_s'] < 0.05}; "
          f"SSE p95 < 250 ms -> {sse['sse_delivery_p95_s'] is not None and sse['sse_delivery_p95_s'] < 0.25}")
    write_json(args.json_out, figures)
    return 0
