"""Novel errors: new kinds of trouble surface once per service, old news does not."""

from __future__ import annotations

from operators.logcluster import TemplateMiner
from operators.novelty import NoveltyTracker

MIN = 60_000


def feed(tracker, miner, ts, service, severity, body):
    m = miner.add(body)
    return tracker.observe(ts, "t1", service, severity, m.cluster_id, m.template, body, m.variant_of)


def test_new_trouble_surfaces_once_per_service_with_a_label():
    miner, tr = TemplateMiner(), NoveltyTracker(baseline_ms=10 * MIN)
    for i in range(20):
        assert feed(tr, miner, i * 30_000, "api", "info", f"GET /items/{i} 200 {i}ms") is None
        assert feed(tr, miner, i * 30_000, "db", "error", f"connection reset by peer 10.0.0.{i}:5432") is None
    e = feed(tr, miner, 12 * MIN, "api", "error", "upstream payments timed out after 3000ms")
    assert e is not None and e.service == "api" and e.first_seen_ms == 12 * MIN
    assert e.template == "upstream payments timed out after <*>"
    assert e.label == "error in api: upstream payments timed out after …"
    assert e.examples == ["upstream payments timed out after 3000ms"] and len(e.nearest) <= 3
    assert feed(tr, miner, 13 * MIN, "api", "error", "upstream payments timed out after 2500ms") is None
    again = feed(tr, miner, 13 * MIN, "web", "error", "upstream payments timed out after 2800ms")
    assert again is not None and again.service == "web"  # spreading to another caller is news there


def test_old_news_and_quiet_lines_are_not_novel():
    miner, tr = TemplateMiner(), NoveltyTracker(baseline_ms=10 * MIN)
    feed(tr, miner, 0, "db", "error", "connection reset by peer 10.0.0.1:5432")
    # the fleet knew it during the baseline: another service printing it later is no news
    assert feed(tr, miner, 20 * MIN, "cache", "error", "connection reset by peer 10.0.0.9:6379") is None
    # new, but an ordinary info line
    assert feed(tr, miner, 20 * MIN, "api", "info", "cache warmed with 120 keys") is None
    # no severity, but the words say trouble
    assert feed(tr, miner, 21 * MIN, "api", "", "could not open file: permission denied") is not None


def test_a_new_word_in_a_known_sentence_is_no_new_kind():
    miner, tr = TemplateMiner(), NoveltyTracker(baseline_ms=10 * MIN)
    feed(tr, miner, 0, "db", "error", "ERROR: duplicate key value violates unique constraint users_pkey")
    e = feed(tr, miner, 20 * MIN, "db", "error", "ERROR: duplicate key value violates unique constraint orders_pkey")
    assert e is None


def test_a_known_error_printing_far_above_its_rate_is_a_spike():
    miner, tr = TemplateMiner(), NoveltyTracker(baseline_ms=10 * MIN)
    events = []
    for minute in range(40):  # one "connection reset" a minute, then 30 in minute 35
        n = 30 if minute == 35 else 1
        for k in range(n):
            ev = feed(tr, miner, minute * MIN + k * 1000, "cache", "error", f"connection reset by peer 10.0.0.{k}:6379")
            if ev is not None:
                events.append(ev)
    assert len(events) == 1
    e = events[0]
    assert e.kind == "rate_spike" and 35 * MIN <= e.first_seen_ms < 36 * MIN
    assert e.per_minute >= 10 and e.usual_per_minute < 2 and e.label.startswith("rate spike in cache: ")
    # info lines never spike, however many
    quiet = [feed(tr, miner, 41 * MIN + k, "api", "info", f"GET /items/{k} 200") for k in range(100)]
    assert not any(quiet)
