"""Running the app: uvicorn in the foreground (``opscopilot serve``) or in a background thread
beside the stream job (``opscopilot demo``, which shares its chdb engine with the API)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import uvicorn

from api.app import create_app
from api.context import RequestIdFilter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [req %(request_id)s] %(message)s"


def configure_logging(level: int = logging.INFO, access_log: bool = True) -> None:
    """Every line carries the request id (``-`` outside a request)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RequestIdFilter())
    for name in ("opscopilot", "api", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level)
        lg.propagate = False
    logging.getLogger().handlers[:] = [handler]  # the libraries' lines (psycopg, sse) too
    logging.getLogger("opscopilot.api").setLevel(logging.INFO if access_log else logging.WARNING)


def _config(app, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on",
                          timeout_graceful_shutdown=3)


def serve(settings, postgres_url: str, store=None, host: Optional[str] = None, port: Optional[int] = None) -> None:
    """Serve until Ctrl-C / SIGTERM."""
    app = create_app(settings, postgres_url, store)
    uvicorn.Server(_config(app, host or settings.api_host, settings.api_port if port is None else port)).run()


class BackgroundServer:
    """The API in a daemon thread; ``start()`` returns once it accepts connections."""

    def __init__(self, settings, postgres_url: str, store=None, host: Optional[str] = None,
                 port: Optional[int] = None) -> None:
        self.app = create_app(settings, postgres_url, store)
        self.server = uvicorn.Server(_config(self.app, host or settings.api_host,
                                             settings.api_port if port is None else port))
        self.thread = threading.Thread(target=self.server.run, name="opscopilot-api", daemon=True)

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.port}/"

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start (see the log above)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
