"""Per-stage counters of a running flow, printed as progress and as a final summary."""

from __future__ import annotations

import sys
import threading
import time
from typing import Dict, Optional, TextIO

STAGES = ("decode", "validate", "dedupe", "sink", "detect", "cluster", "novel", "incidents")


class Counters:
    """Thread-safe counters: ``counters.add("decode", in_=10, out=9, dead=1)``.

    Conservation: every record read is, in the end, stored, a duplicate (in-flow or already
    stored) or a dead letter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: Dict[str, Dict[str, int]] = {s: {"in": 0, "out": 0, "dead": 0, "dup": 0} for s in STAGES}
        self.started = time.monotonic()

    def add(self, stage: str, in_: int = 0, out: int = 0, dead: int = 0, dup: int = 0) -> None:
        with self._lock:
            v = self.values[stage]
            v["in"] += in_
            v["out"] += out
            v["dead"] += dead
            v["dup"] += dup

    def snapshot(self) -> Dict[str, Dict[str, int]]:
        with self._lock:
            return {k: dict(v) for k, v in self.values.items()}

    def totals(self) -> Dict[str, int]:
        v = self.snapshot()
        return {
            "read": v["decode"]["in"],
            "stored": v["sink"]["out"],
            "duplicates": v["dedupe"]["dup"] + v["sink"]["dup"],
            "dead_letters": v["decode"]["dead"] + v["validate"]["dead"],
            "dead_letters_stored": v["sink"]["dead"],
        }

    def line(self) -> str:
        t = self.totals()
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"read {t['read']:,} | stored {t['stored']:,} | duplicates {t['duplicates']:,} | "
                f"dead letters {t['dead_letters']:,} | {t['read'] / elapsed:,.0f} records/s")

    def table(self) -> str:
        v = self.snapshot()
        rows = [f"{'stage':<10}{'in':>14}{'out':>14}{'dead':>12}{'dup':>12}"]
        for s in STAGES:
            x = v[s]
            rows.append(f"{s:<10}{x['in']:>14,}{x['out']:>14,}{x['dead']:>12,}{x['dup']:>12,}")
        return "\n".join(rows)


class ProgressPrinter:
    """Prints ``counters.line()`` every ``interval`` seconds on a daemon thread."""

    def __init__(self, counters: Counters, interval: float, out: Optional[TextIO] = None,
                 prefix: str = "ingest") -> None:
        self.counters = counters
        self.interval = interval
        self.out = out or sys.stderr
        self.prefix = prefix
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "ProgressPrinter":
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            print(f"[{self.prefix}] {self.counters.line()}", file=self.out, flush=True)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
