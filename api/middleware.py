"""Request hygiene as one ASGI middleware: a request id on every request (accepted from
``X-Request-ID`` or made), returned and logged with every line; a request body size limit
(413 before the route runs); an access log line and request metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from api.context import request_id_var
from api.problems import PROBLEM_JSON

log = logging.getLogger("opscopilot.api")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _TooLarge(Exception):
    pass


class RequestMiddleware:
    def __init__(self, app, *, max_body_bytes: int, metrics) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = ""
        length = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                rid = v.decode("latin-1")
            elif k == b"content-length":
                length = v
        if not _GOOD_ID.match(rid):
            rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        t0 = time.perf_counter()
        status = {"code": 500, "started": False, "too_large": False}

        async def send_wrapped(message):
            if status["too_large"]:  # the app answered a body cut short: answer 413 instead
                if message["type"] == "http.response.start" and not status["started"]:
                    status["started"] = True
                    status["code"] = 413
                    await self._too_large(scope, send_raw)
                return
            await send_raw(message)

        async def send_raw(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", rid.encode())]
            await send(message)

        seen = 0

        async def receive_limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # a body without (or under-stating) Content-Length
                    status["too_large"] = True
                    raise _TooLarge()
            return message

        try:
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._too_large(scope, send_raw)
            else:
                try:
                    await self.app(scope, receive_limited, send_wrapped)
                except _TooLarge:
                    pass
                if status["too_large"] and not status["started"]:
                    await self._too_large(scope, send_raw)
        finally:
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status["code"], elapsed)
            who = scope.get("state", {}).get("principal")
            log.info("%s %s %d %.1fms%s", scope["method"], scope["path"], status["code"], elapsed * 1000,
                     f" tenant={who.tenant} caller={who.subject}" if who else "")
            request_id_var.reset(token)

    async def _too_large(self, scope, send) -> None:
        body = json.dumps({"type": "about:blank", "title": "Request too large", "status": 413,
                           "detail": f"request bodies are limited to {self.max_body} bytes",
                           "instance": scope["path"], "request_id": request_id_var.get()}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
