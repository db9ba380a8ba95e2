"""The incident simulator as a Bytewax source: a scenario's stream, step by step.

One partition; the resume state is the number of steps emitted, so a restart regenerates the
scenario (it is deterministic) and skips what was already sent. ``speed`` paces the stream by
event time (N x real time); without it, as fast as it can be generated.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import List, Optional

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from schemas.batch import RawChunk
from sources.control import STOP


class _SimPartition(StatefulSourcePartition[RawChunk, int]):
    def __init__(self, run, speed: Optional[float], steps_per_item: int, done: int):
        self.run = run
        self.name = run.sc.name
        self.it = run.steps()
        for _ in range(done):  # deterministic: regenerate and skip
            next(self.it, None)
        self.done = done
        self.speed = speed
        self.steps_per_item = steps_per_item
        self.wall0 = datetime.now(timezone.utc)
        self.step0 = done
        self.awake: Optional[datetime] = None

    def next_batch(self) -> List[RawChunk]:
        if STOP.is_set():
            raise StopIteration()
        lines: list = []
        n = 0
        while n < self.steps_per_item:
            if self.speed:
                due = self.wall0 + timedelta(milliseconds=(self.done - self.step0) * self.run.step_ms / self.speed)
                if due > datetime.now(timezone.utc):
                    self.awake = due
                    break
            step = next(self.it, None)
            if step is None:
                if lines:
                    break
                raise StopIteration()
            lines.extend(step)
            self.done += 1
            n += 1
        first = self.done - n
        return [RawChunk(f"simulator:{self.name}", lines, None, f"{self.name}@step{first}:")] if lines else []

    def next_awake(self) -> Optional[datetime]:
        return self.awake

    def snapshot(self) -> int:
        return self.done


class SimulatorSource(FixedPartitionedSource[RawChunk, int]):
    """Stream a built :class:`simulator.scenario.Run` into the ingest flow."""

    def __init__(self, run, speed: Optional[float] = None, steps_per_item: int = 20):
        self.run = run
        self.speed = speed
        self.steps_per_item = steps_per_item

    def list_parts(self) -> List[str]:
        return [self.run.sc.name]

    def build_part(self, step_id: str, for_part: str, resume_state: Optional[int]):
        return _SimPartition(self.run, self.speed, self.steps_per_item, resume_state or 0)
