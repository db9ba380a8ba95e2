"""Cooperative stop: the CLI sets ``STOP`` on Ctrl-C / SIGTERM; every source then ends its
partitions at the next poll, so the flow finishes like at end of input (the sink drains)."""

from __future__ import annotations

import threading

STOP = threading.Event()
