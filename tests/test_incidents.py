"""The incident engine: grouping by time and topology, change suspects, lateness, overlays."""

from __future__ import annotations

import random

import pytest

from operators.incidents import Change, ChangeModel, IncidentEngine, Symptom

MIN = 60_000
T0 = 1_767_225_600_000
EDGES = [("edge", "api"), ("api", "svc"), ("svc", "db"), ("api", "cache"), ("edge", "search"),
         ("search", "index"), ("worker", "db2")]


def engine(**kw) -> IncidentEngine:
    e = IncidentEngine("acme", **kw)
    for a, b in EDGES:
        e.add_edge(T0, a, b, 100.0)
    return e


def anomaly(ts, svc, metric="error_rate"):
    return Symptom(ts, svc, "anomaly", metric, f"a/{svc}/{metric}/{ts}", 1.0, 1, metric)


def bad_deploy_events(t_fault=T0 + 40 * MIN):
    """A bad deploy of svc: its errors, then its callers', a novel error with the version, a
    page; a harmless deploy of an unrelated service just before; background changes earlier."""
    ev = [Change(T0 + 5 * MIN, "search", "c-old", "deploy", "v1.0.0"),
          Change(t_fault - 90_000, "index", "c-decoy", "deploy", "v3.3.3"),
          Change(t_fault - 5_000, "svc", "c-guilty", "deploy", "v2.4.1"),
          anomaly(t_fault + 10_000, "svc"), anomaly(t_fault + 10_000, "svc", "latency_p99_ms"),
          Symptom(t_fault + 15_000, "svc", "novel", "cl1", "n/svc/cl1", 1.0, 1,
                  "NullPointerException in handler (version v2.4.1)", "error"),
          anomaly(t_fault + 20_000, "api"), anomaly(t_fault + 30_000, "edge"),
          Symptom(t_fault + 45_000, "api", "page", "HighErrorRate", "pd-1", severity="critical")]
    ev += [anomaly(t_fault + 60_000 * k, "svc") for k in range(2, 12)]
    return ev


def feed(e: IncidentEngine, events) -> list:
    out = []
    for x in events:
        if isinstance(x, tuple):  # (ts, service, alert name): the page stopped firing
            e.resolve_page(*x)
        else:
            (e.add_change if isinstance(x, Change) else e.add_symptom)(x)
        out += e.advance()
    return out + e.flush()


def test_a_bad_deploy_is_one_incident_tagged_with_its_change():
    e = engine()
    entries = feed(e, bad_deploy_events())
    (inc,) = e.incidents
    assert inc.status == "open"  # its page still fires
    entries += feed(e, [(T0 + 60 * MIN, "api", "HighErrorRate")])
    assert inc.status == "resolved" and inc.root == "svc"
    assert set(inc.services) == {"svc", "api", "edge"}
    assert inc.tag == "c-guilty" and inc.suspects[0].likelihood >= 0.5
    assert inc.severity == "critical"
    top = inc.suspects[0]
    # explained by its parts: bias + the parts give the likelihood
    assert set(top.parts) == set(top.features)
    z = e.model.bias + sum(top.parts.values())
    assert top.likelihood == pytest.approx(1 / (1 + 2.718281828459045 ** -z), abs=1e-3)
    others = {s.change.change_id: s.likelihood for s in inc.suspects[1:]}
    assert "c-old" not in others or others["c-old"] < 0.2  # long before, unrelated
    assert others.get("c-decoy", 0) < 0.5
    kinds = [x.kind for x in entries]
    assert kinds.index("opened") < kinds.index("tagged") < kinds.index("resolved")
    tagged = next(x for x in entries if x.kind == "tagged")
    assert tagged.data["change_id"] == "c-guilty" and tagged.ts <= T0 + 41 * MIN  # within a minute
    assert all(x.incident_id == inc.id for x in entries)
    assert len({x.dedup_key for x in entries}) == len(entries)


def test_out_of_order_within_lateness_gives_the_same_incident():
    ordered = engine()
    feed(ordered, bad_deploy_events())
    shuffled = engine(lateness_ms=60_000)
    ev = bad_deploy_events()
    rng = random.Random(3)
    # swap neighbours less than the lateness apart
    for _ in range(50):
        i = rng.randrange(len(ev) - 1)
        a, b = ev[i], ev[i + 1]
        if abs(a.ts - b.ts) < 50_000:
            ev[i], ev[i + 1] = b, a
    feed(shuffled, ev)
    (a,), (b,) = ordered.incidents, shuffled.incidents
    assert (a.id, a.root, a.tag, sorted(a.services)) == (b.id, b.root, b.tag, sorted(b.services))
    assert shuffled.late == 0


def test_redelivered_symptoms_and_changes_are_ignored():
    e = engine()
    ev = bad_deploy_events()
    feed(e, ev + ev[:6])
    (inc,) = e.incidents
    assert len(inc.symptoms) == len([x for x in ev if isinstance(x, Symptom)])


def test_unrelated_concurrent_faults_are_two_incidents():
    t = T0 + 40 * MIN
    ev = [anomaly(t, "db2"), anomaly(t, "db2", "latency_p99_ms"), anomaly(t + 10_000, "worker"),
          anomaly(t + 5_000, "index"), anomaly(t + 5_000, "index", "latency_p99_ms"), anomaly(t + 20_000, "search")]
    e = engine()
    feed(e, ev)
    groups = sorted(sorted(i.services) for i in e.incidents)
    assert groups == [["db2", "worker"], ["index", "search"]]
    assert {i.root for i in e.incidents} == {"db2", "index"}  # the callee hit first, not the caller


def test_a_lone_anomaly_opens_no_incident_and_a_fault_without_change_gets_no_tag():
    e = engine()
    feed(e, [anomaly(T0 + 10 * MIN, "cache")])
    assert e.incidents == []
    t = T0 + 60 * MIN
    e2 = engine()
    feed(e2, [Change(t - 40 * MIN, "svc", "c1", "config"), anomaly(t, "db"), anomaly(t, "db", "latency_p99_ms"),
              anomaly(t + 10_000, "svc"), anomaly(t + 20_000, "api")])
    (inc,) = e2.incidents
    assert inc.root == "db" and inc.tag is None


def test_overlays_count_symptoms_before_and_after_each_change():
    e = engine()
    feed(e, bad_deploy_events())
    rows = {r["change_id"]: r for r in e.overlays()}
    assert set(rows) == {"c-old", "c-decoy", "c-guilty"}
    g = rows["c-guilty"]
    assert g["symptoms_before"] == 0 and g["symptoms_after"] >= 10 and g["novel_after"] == 1
    assert g["neighbour_symptoms_after"] >= 2  # api is svc's caller
    assert g["incident_id"] == e.incidents[0].id and g["likelihood"] >= 0.5
    assert rows["c-old"]["symptoms_after"] == 0 and rows["c-old"]["incident_id"] == ""


def test_change_model_file_round_trip(tmp_path):
    m = ChangeModel(-2.0, {"proximity": 1.5, "on_root": 2.0}, "test")
    m.save(tmp_path / "m.json")
    back = ChangeModel.load(tmp_path / "m.json")
    assert back == m
    p, parts = back.score({"proximity": 1.0, "on_root": 1.0})
    assert parts == {"proximity": 1.5, "on_root": 2.0} and p == pytest.approx(1 / (1 + 2.718281828 ** -1.5), rel=1e-6)


def test_blast_radius_is_the_services_hit_materially_most_hit_first():
    t = T0 + 40 * MIN

    def a(ts, svc, metric, value, expected):
        return Symptom(ts, svc, "anomaly", metric, f"a/{svc}/{metric}/{ts}", 1.0, 1, metric, "", value, expected)

    e = engine()
    feed(e, [a(t, "db", "latency_p99_ms", 90.0, 10.0), a(t, "db", "error_rate", 0.3, 0.001),
             a(t + 10_000, "svc", "latency_p99_ms", 120.0, 40.0),
             a(t + 10_000, "api", "error_rate", 0.012, 0.010),  # detected, but a small shift
             a(t + 20_000, "edge", "latency_p50_ms", 14.0, 10.0)])  # +40%: material
    (inc,) = e.incidents
    assert inc.root == "db"
    radius = inc.radius()
    assert [s for s, _ in radius] == ["db", "svc", "edge"]
    assert radius[0][1] == {"latency_p99_ms": 8.0, "error_rate": pytest.approx(0.299)}
    assert inc.summary()["blast_radius"][1] == {"service": "svc", "impact": {"latency_p99_ms": 2.0}}


def test_callers_errors_that_name_a_dependency_point_the_root_at_it():
    t = T0 + 40 * MIN
    e = engine()
    entries = feed(e, [Symptom(t, "api", "novel", "c1", "n/api/c1", 1.0, 1, "upstream svc timed out after 5000ms",
                               "error"),
             Symptom(t + 2_000, "edge", "novel", "c2", "n/edge/c2", 1.0, 1, "retrying request to svc (attempt 2)",
                     "warning"),
             anomaly(t + 10_000, "api"), anomaly(t + 10_000, "edge")])
    (inc,) = e.incidents
    assert inc.root == "svc" and "svc" not in inc.services  # named, with no symptom of its own yet
    roots = [x for x in entries if x.kind == "root"]
    assert roots[-1].data["service"] == "svc" and "new errors of its callers name it" in roots[-1].body


def test_a_change_led_fault_during_an_open_incident_is_an_incident_of_its_own():
    t = T0 + 40 * MIN
    e = engine()
    first = [anomaly(t + k * MIN, "db", m) for k in range(0, 30, 2) for m in ("error_rate", "latency_p99_ms")]
    second = [Change(t + 15 * MIN, "api", "c-api", "deploy", "v9"), anomaly(t + 15 * MIN + 20_000, "api"),
              anomaly(t + 15 * MIN + 20_000, "api", "latency_p99_ms")]
    feed(e, sorted(first + second, key=lambda x: x.ts))
    assert len(e.incidents) == 2
    by_root = {i.root: i for i in e.incidents}
    assert set(by_root) == {"db", "api"} and by_root["api"].tag == "c-api" and by_root["db"].tag is None


def test_change_likelihoods_are_calibrated_on_the_gold_suite():
    """The fitted model on the gold suite's CI cut (scenarios it was not fitted on): expected
    calibration error over 10 bins at most 0.1, and the scored pairs are not all near zero."""
    from benchmarks import gold as G
    from benchmarks import scoring as S
    from simulator.suite import quick_suite

    acc = G.new_acc()
    for sc in quick_suite():
        G.score_scenario(sc.build(), acc)
    pairs = acc["inc_calibration"]
    assert len(pairs) >= 50 and sum(hit for _p, hit in pairs) >= 5
    assert S.expected_calibration_error(pairs) <= 0.1
    high = [hit for p, hit in pairs if p >= 0.5]
    assert high and sum(high) / len(high) >= 0.7  # what is tagged is mostly guilty
    figures = G.incident_figures(acc)
    assert figures["tagging_accuracy"] >= 0.8 and figures["grouping_one_per_fault"] >= 0.8


def test_trouble_back_soon_after_quietening_reopens_the_incident():
    t = T0 + 40 * MIN
    e = engine()
    entries = feed(e, [anomaly(t, "db"), anomaly(t, "db", "latency_p99_ms"),
                       anomaly(t + 20 * MIN, "db"),  # 15 min quiet: resolved at t + 15 min, then back
                       anomaly(t + 80 * MIN, "db"), anomaly(t + 80 * MIN, "db", "latency_p99_ms")])  # too late
    assert len(e.incidents) == 2
    first = e.incidents[0]
    kinds = [x.kind for x in entries if x.incident_id == first.id]
    assert kinds.count("resolved") == 2 and "reopened" in kinds and first.n_symptoms == 3
