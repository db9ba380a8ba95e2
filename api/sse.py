"""Live timelines: one Postgres LISTEN per API process, fanned out to SSE clients.

The stream job (or the API) inserts a timeline row; its trigger NOTIFYs on commit with the
row's id and tenant. The hub fetches the new rows once (under that tenant, by RLS) and queues
them to every client of that tenant (and incident). Each client has a bounded queue: a client
too slow to drain it is dropped with a final ``dropped`` event saying why, so the server's
memory stays flat whatever the clients do.

A client resumes with ``Last-Event-ID``: it subscribes first, then reads the rows after that
id from the database, then the queue, skipping ids it already sent, so nothing is missed or
sent twice. If the LISTEN connection is lost, the hub reconnects and tells every client to
read what it missed from the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any, AsyncIterator, Callable, NamedTuple, Optional

import anyio
import psycopg

from sinks.postgres import TIMELINE_CHANNEL

log = logging.getLogger(__name__)

RESYNC = object()  # read what may have been missed from the database
DROP = object()  # the client is dropped; its reason is on the subscriber


class Entry(NamedTuple):
    """A timeline row as it goes out: encoded once, shared by every client's queue."""

    id: int
    incident_id: str
    data: str


class Subscriber:
    __slots__ = ("tenant", "incident_id", "queue", "reason")

    def __init__(self, tenant: str, incident_id: Optional[str], size: int) -> None:
        self.tenant = tenant
        self.incident_id = incident_id
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=size)
        self.reason = ""

    def offer(self, item: Any) -> bool:
        """Queue an item; on overflow drop the client (its queue emptied, a DROP queued) and
        return False (once: later offers to a dropped client return True and do nothing)."""
        if self.reason:
            return True
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.reason = (f"client too slow: {self.queue.maxsize} events waiting; reconnect with "
                           "Last-Event-ID to resume")
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(DROP)
            return False


class TimelineHub:
    def __init__(self, url: str, fetch: Callable[[str, list[int]], list[dict]], encode: Callable[[dict], str],
                 metrics, buffer: int = 256) -> None:
        self.url = url
        self.fetch = fetch  # (tenant, ids) -> rows, run in a worker thread
        self.encode = encode  # row -> the event's data
        self.metrics = metrics
        self.buffer = buffer
        self._subs: dict[str, set[Subscriber]] = defaultdict(set)
        self._notes: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self.connected = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen(), name="sse-listen"),
                       asyncio.create_task(self._dispatch(), name="sse-dispatch")]
        try:
            await asyncio.wait_for(self.connected.wait(), 10)
        except asyncio.TimeoutError:
            log.warning("SSE hub: LISTEN not connected yet; retrying in the background")

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    def subscribe(self, tenant: str, incident_id: Optional[str]) -> Subscriber:
        sub = Subscriber(tenant, incident_id, self.buffer)
        self._subs[tenant].add(sub)
        self.metrics.sse_clients.inc()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.tenant)
        if subs and sub in subs:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.tenant]
            self.metrics.sse_clients.dec()

    # -- work ----------------------------------------------------------------------------
    async def _listen(self) -> None:
        delay = 0.2
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {TIMELINE_CHANNEL}")
                    self.connected.set()
                    if not first:  # events may have been missed while disconnected
                        for subs in list(self._subs.values()):
                            for sub in list(subs):
                                self._offer(sub, RESYNC)
                    first, delay = False, 0.2
                    async for note in conn.notifies():
                        self._notes.put_nowait(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect on any connection trouble
                self.connected.clear()
                log.warning("SSE hub: LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _dispatch(self) -> None:
        while True:
            payloads = [await self._notes.get()]
            while not self._notes.empty():
                payloads.append(self._notes.get_nowait())
            ids: dict[str, list[int]] = defaultdict(list)
            for p in payloads:
                try:
                    note = json.loads(p)
                    tenant, row_id = note["tenant_id"], int(note["id"])
                except (ValueError, KeyError, TypeError):
                    log.warning("SSE hub: unreadable notification ignored")
                    continue
                if tenant in self._subs:
                    ids[tenant].append(row_id)
            for tenant, wanted in ids.items():
                try:
                    rows = await anyio.to_thread.run_sync(self.fetch, tenant, wanted)
                except Exception as exc:  # noqa: BLE001
                    log.warning("SSE hub: fetching %d entries failed (%s); clients resync", len(wanted), exc)
                    for sub in list(self._subs.get(tenant, ())):
                        self._offer(sub, RESYNC)
                    continue
                for row in rows:
                    entry = self.entry(row)
                    for sub in list(self._subs.get(tenant, ())):
                        if sub.incident_id is None or sub.incident_id == entry.incident_id:
                            self._offer(sub, entry)

    def entry(self, row: dict) -> Entry:
        return Entry(row["id"], row["incident_id"], self.encode(row))

    def _offer(self, sub: Subscriber, item: Any) -> None:
        if not sub.offer(item):
            self.metrics.sse_dropped.inc()


async def events(hub: TimelineHub, sub: Subscriber, backlog: Callable[[int], list[dict]],
                 last_id: int) -> AsyncIterator[dict]:
    """The SSE events of one subscribed client after ``last_id``: the database's backlog, then
    the live queue, each entry once, in id order within each read; unsubscribes at the end."""

    def event(e: Entry) -> dict:
        hub.metrics.sse_events.inc()
        return {"id": str(e.id), "event": "timeline", "data": e.data}

    async def catch_up(after: int):
        while rows := await anyio.to_thread.run_sync(backlog, after):
            for r in rows:
                yield hub.entry(r)
            after = rows[-1]["id"]

    try:
        async for e in catch_up(last_id):
            last_id = e.id
            yield event(e)
        while True:
            item = await sub.queue.get()
            if item is DROP:
                yield {"event": "dropped", "data": json.dumps({"reason": sub.reason})}
                return
            if item is RESYNC:
                async for e in catch_up(last_id):
                    last_id = e.id
                    yield event(e)
            elif item.id > last_id:
                last_id = item.id
                yield event(item)
    finally:
        hub.unsubscribe(sub)
