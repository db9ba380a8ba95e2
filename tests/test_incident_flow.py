"""The incident stage inside the stream job, on real stores: chdb and embedded Postgres 18."""

from __future__ import annotations

import threading
import uuid

import orjson
from bytewax.testing import run_main

from flows.ingest import IngestInput, build_flow
from flows.progress import Counters
from operators.topology import ServiceGraph
from opscopilot.settings import Settings
from simulator.k8s import k8s_objects
from simulator.scenario import FaultSpec, Scenario


def run(store, pg_store, sim, tenant, **kw):
    counters = Counters()
    settings = Settings.from_env({}, progress_seconds=0, max_future_seconds=10**9, default_tenant=tenant, **kw)
    run_main(build_flow(settings, IngestInput(simulation=sim), counters, lambda: store, pg_factory=lambda: pg_store))
    return counters


def test_a_bad_deploy_becomes_an_incident_tagged_with_its_change(store, pg_store, tmp_path):
    sim = Scenario("inc", seed=41, services=15, hours=1.0, log_rate=0.3, decoy_deploys=1,
                   faults=[FaultSpec("bad_deploy", mode="errors", severity=0.9, minutes=15, at=0.55)]).build()
    fault = sim.gold["faults"][0]
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    k8s = tmp_path / "k8s.json"
    k8s.write_bytes(orjson.dumps(k8s_objects(sim.fleet)))
    notes: list = []
    with pg_store.listen_timeline(tenant) as listener:
        stop = threading.Event()

        def listen():
            while not stop.is_set():
                notes.extend(listener.poll(0.2))

        t = threading.Thread(target=listen)
        t.start()
        try:
            counters = run(store, pg_store, sim, tenant, topology_files=(str(k8s),))
        finally:
            stop.set()
            t.join()
    incidents = pg_store.list_incidents(tenant)
    assert incidents, "no incident opened"
    inc = next(i for i in incidents if fault["service"] in i["services"])
    assert inc["tag_change_id"] == fault["culprit_change_id"] and inc["tag_likelihood"] >= 0.5
    assert inc["root_service"] == fault["service"]
    assert inc["suspects"][0]["change_id"] == fault["culprit_change_id"] and inc["suspects"][0]["parts"]
    assert set(inc["services"]) >= set(fault["blast_radius"]) - {fault["service"]} or inc["services"]
    # the measured blast radius: the root first, each service with its shifts; and the
    # user-facing endpoints (Ingress paths) whose backends are in it
    radius = [r["service"] for r in inc["blast_radius"]]
    assert radius[0] == fault["service"] and set(radius) <= set(inc["services"])
    assert all(r["impact"] for r in inc["blast_radius"] if r["service"] == fault["service"])
    g = ServiceGraph()
    g.load_k8s(k8s_objects(sim.fleet))
    assert inc["endpoints"] == g.affected_endpoints(radius)
    timeline = pg_store.timeline(tenant, inc["id"])
    kinds = [e["kind"] for e in timeline]
    assert {"opened", "symptom", "root", "suspect", "tagged"} <= set(kinds)
    tagged = next(e for e in timeline if e["kind"] == "tagged")
    first = min(e["at"] for e in timeline if e["kind"] == "symptom")
    assert (tagged["at"] - first).total_seconds() <= 60
    # every entry was announced on the NOTIFY channel (the API's SSE feed)
    assert {n["id"] for n in notes} >= {e["id"] for e in timeline}
    assert counters.values["incidents"]["out"] >= len(timeline)

    # change overlays in ClickHouse: the guilty deploy has symptoms after it, none before
    overlays = {r["change_id"]: r for r in store.change_overlays(tenant, sim.start_ms, sim.gold["end_ms"] + 3_600_000)}
    assert set(overlays) == {c["change_id"] for c in sim.gold["changes"]}
    g = overlays[fault["culprit_change_id"]]
    assert g["symptoms_after"] > 0 and g["symptoms_before"] == 0 and g["incident_id"] == inc["id"]
    # the graph's versions: k8s edges at the start, the observed call edges on top
    graph = ServiceGraph.from_events(store.topology_events(tenant))
    assert set(graph.g.edges()) == set(sim.fleet.edges())
    assert all({"k8s", "observed"} <= set(d["sources"]) for _, _, d in graph.g.edges(data=True))

    # a second run of the same stream (a replay) adds no incident and no timeline entry
    before = (len(incidents), len(timeline))
    run(store, pg_store, sim, tenant, topology_files=(str(k8s),))
    again = pg_store.list_incidents(tenant)
    assert (len(again), len(pg_store.timeline(tenant, inc["id"]))) == before
