"""The service graph: Kubernetes objects, observed calls, declared edges, versions, radius."""

from __future__ import annotations

import json

import pytest

from operators.topology import K8sObjects, ServiceGraph, TopologyError
from simulator.fleet import build_fleet
from simulator.k8s import k8s_objects


@pytest.mark.parametrize("size,seed", [(12, 1), (30, 5), (150, 9)])
def test_k8s_objects_give_the_fleets_call_graph(size, seed):
    fleet = build_fleet(size, seed=seed)
    g = ServiceGraph()
    g.load_k8s(k8s_objects(fleet, seed=seed))
    assert set(g.g.edges()) == set(fleet.edges())
    assert all(d["sources"].keys() == {"k8s"} for _, _, d in g.g.edges(data=True))
    # every pod is traced through its ReplicaSet (or StatefulSet) to its service
    assert set(g.pods.values()) == set(fleet.names) and len(g.pods) == 3 * size
    edges = [s.name for s in fleet.services if s.tier == "edge"]
    assert set(g.endpoints.values()) == {c for e in edges for c, _ in fleet.calls[e]}


def test_k8s_references_by_url_dns_name_env_host_and_configmap():
    def svc(name):
        return {"kind": "Service", "metadata": {"name": name}, "spec": {"selector": {"app": name}}}

    def deploy(name, env=(), env_from=None):
        c = {"name": name, "env": list(env)}
        if env_from:
            c["envFrom"] = [{"configMapRef": {"name": env_from}}]
        return {"kind": "Deployment", "metadata": {"name": f"{name}-deploy"},
                "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c]}}}}

    items = [svc(n) for n in ("web", "api", "api-v2", "db", "cache", "queue")] + [
        deploy("web", [{"name": "API", "value": "http://api:8080/v1"}]),
        deploy("api", [{"name": "DB", "value": "postgres://u@db.prod.svc.cluster.local:5432/x"},
                       {"name": "CACHE_SERVICE_HOST", "value": "10.0.0.7"}], env_from="api-cm"),
        {"kind": "ConfigMap", "metadata": {"name": "api-cm"}, "data": {"QUEUE_URL": "amqp://queue:5672"}},
        deploy("api-v2", [{"name": "NOTE", "value": "apiary is not a service"}]),
    ]
    edges = K8sObjects(items).edges()
    assert edges == [("api", "cache"), ("api", "db"), ("api", "queue"), ("web", "api")]


def test_observed_edges_weights_freshness_and_versions():
    g = ServiceGraph(freshness_ms=60_000)
    assert g.observe_call(0, "a", "b", 10.0)
    assert not g.observe_call(10_000, "a", "b", 11.0)  # within 20%: no new version
    assert g.observe_call(20_000, "a", "b", 30.0)  # re-weighted: a new version
    g.observe_call(20_000, "a", "c", 10.0)
    g.declare("c", "d", ts=25_000)
    assert g.share("a", "b") == pytest.approx(0.75)
    assert g.at(5_000).edges() and set(g.at(5_000).edges()) == {("a", "b")}
    assert g.at(5_000)["a"]["b"]["weight"] == 10.0 and g.at(30_000)["a"]["b"]["weight"] == 30.0
    assert g.expire(100_000) == 2  # the observed edges went stale; the declared one stays
    assert set(g.g.edges()) == {("c", "d")}
    assert set(g.at(30_000).edges()) == {("a", "b"), ("a", "c"), ("c", "d")}  # the past is kept
    assert set(g.at(100_000).edges()) == {("c", "d")}
    again = ServiceGraph.from_events(g.events)
    assert set(again.g.edges()) == set(g.g.edges())


def test_predicted_and_measured_blast_radius():
    g = ServiceGraph()
    for caller, callee, w in [("edge", "api", 100), ("api", "db", 50), ("api", "cache", 150), ("worker", "db", 5),
                              ("edge", "static", 100)]:
        g.observe_call(0, caller, callee, w)
    pred = dict(g.predicted_radius("db"))
    assert set(pred) == {"api", "edge", "worker"}
    assert pred["worker"] == 1.0 and pred["api"] == pytest.approx(0.25) and pred["edge"] == pytest.approx(0.125)
    ranked = g.blast_radius("db", {"db": 3.0, "api": 2.0, "static": 5.0, "edge": 1.0})
    assert [s for s, _ in ranked] == ["db", "api", "edge"]  # static does not call db: not in the radius
    g.endpoints["shop/api"] = "api"
    assert g.affected_endpoints([s for s, _ in ranked]) == ["shop/api"]


def test_config_file_json_and_yaml(tmp_path):
    j = tmp_path / "edges.json"
    j.write_text(json.dumps({"edges": [{"caller": "a", "callee": "b", "weight": 2}]}))
    y = tmp_path / "edges.yaml"
    y.write_text("edges:\n  - {caller: b, callee: c}\n")
    g = ServiceGraph()
    assert g.load_config(j) == 1 and g.load_config(y) == 1
    assert set(g.g.edges()) == {("a", "b"), ("b", "c")} and g.g["a"]["b"]["sources"].keys() == {"config"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("edges:\n  - {caller: b}\n")
    with pytest.raises(TopologyError, match=r"edges\[0\] needs 'caller' and 'callee'"):
        g.load_config(bad)


def test_a_steady_edge_stays_in_the_graph_replayed_from_its_events():
    """An edge seen every minute at a steady rate changes no weight, yet the graph of any later
    moment, replayed from the stored events, still has it (it is recorded every half freshness)."""
    g = ServiceGraph(freshness_ms=3_600_000)
    for minute in range(180):
        g.observe_call(minute * 60_000, "web", "api", 100.0 + minute % 3)
    end = 179 * 60_000
    assert set(g.at(end).edges()) == {("web", "api")}
    assert set(ServiceGraph.from_events(g.events).at(end).edges()) == {("web", "api")}
    assert len(g.events) <= 1 + 180 // 30  # one event per half hour, not one per sighting
    assert g.at(end + 3_700_000).number_of_edges() == 0  # unseen for longer than freshness: gone
