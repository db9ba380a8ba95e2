"""Secrets out of logs and messages: URLs and conninfo strings with passwords masked."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """Return ``url`` (a URL or a libpq conninfo string) with any password replaced by ``***``."""
    if "@" not in url and "password" not in url:
        return url
    if "://" not in url:
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    parts = urlsplit(url)
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, sep, password = userinfo.partition(":")
        netloc = f"{user}{':***' if sep and password else sep}@{hostinfo}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
