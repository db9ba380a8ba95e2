"""One settings object, read from ``OPSCOPILOT_*`` environment variables and CLI flags.

Backends are chosen by URL (see ../shared/DESIGN.md):

- ``OPSCOPILOT_CLICKHOUSE_URL``: ``chdb:///abs/dir`` (default: ``<data root>/chdb``) or
  ``clickhouse://user:pass@host:8123/db``.
- ``OPSCOPILOT_POSTGRES_URL``: ``postgresql://...``, or unset for the embedded server in
  ``<data root>/pg``.
- ``OPSCOPILOT_KAFKA_URL``: ``kafka://host:port[,host:port]``, or unset for replay files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from schemas.redact import redact_url


class SettingsError(ValueError):
    """A setting has a value the program cannot use; the message names the setting."""


def _esd_window(env: Mapping[str, str]) -> int:
    """``OPSCOPILOT_DETECT_ESD_WINDOW``: 0 (off) or at least 30 residuals."""
    n = _env_int(env, "OPSCOPILOT_DETECT_ESD_WINDOW", 256, 0)
    if 0 < n < 30:
        raise SettingsError(f"OPSCOPILOT_DETECT_ESD_WINDOW={n}: use 0 (off) or at least 30 residuals")
    return n


def _env_on(env: Mapping[str, str], name: str) -> bool:
    """A switch that is on unless set to 0, false, no or off."""
    return env.get(name, "1") not in ("0", "false", "no", "off")


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: must be >= {minimum}")
    return value


def _env_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: must be >= {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the job, the API and the benchmarks are configured with."""

    data_root: Path = field(default_factory=lambda: Path(".opscopilot").resolve())
    clickhouse_url: str = ""  # "" -> chdb under data_root
    clickhouse_database: str = "opscopilot"
    postgres_url: str = ""  # "" -> embedded pgserver under data_root
    kafka_url: str = ""  # "" -> replay files / simulator
    kafka_topics: tuple = ("signals",)
    kafka_dead_letter_source: str = "kafka"
    default_tenant: str = "default"
    retention_days: int = 30
    dead_letter_retention_days: int = 90
    # batching towards the stores: flush at this many rows or this many seconds
    sink_batch_rows: int = 20_000
    sink_batch_seconds: float = 1.0
    # in-flow dedupe memory (ids remembered per shard) and number of shards
    dedupe_capacity: int = 500_000
    dedupe_shards: int = 1
    # validation limits
    max_record_bytes: int = 256 * 1024
    max_future_seconds: int = 15 * 60
    # progress printing interval (0 disables)
    progress_seconds: float = 2.0
    # detection: on by default; points a new series learns from; seconds between baseline saves
    detect: bool = True
    detect_warmup: int = 100
    detect_records: bool = True  # new all-time highs / lows and bursts count as anomalies (after a day)
    detect_esd_window: int = 256  # residuals of the streaming generalized ESD (0: off)
    baseline_seconds: float = 60.0
    log_clustering: bool = True
    novelty_baseline_seconds: float = 1800.0
    # incidents (needs detect): grouping, change correlation, topology; into Postgres + ClickHouse
    incidents: bool = True
    incident_lateness_seconds: float = 30.0
    incident_gap_seconds: float = 900.0
    topology_files: tuple = ()  # Kubernetes object lists (kubectl get -o json) or declared-edge files
    # the API (opscopilot serve): bind address, per-token rate limit, request size, SSE buffers
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_rate_per_s: float = 50.0
    api_burst: int = 100
    api_max_body_bytes: int = 64 * 1024
    sse_buffer: int = 256  # events queued per SSE client before it is dropped as too slow
    sse_heartbeat_s: float = 15.0
    # optional OIDC: JWTs signed by a key of this JWKS (URL or file), with issuer and audience
    oidc_jwks: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""

    def detect_params(self) -> dict:
        """Parameters of each series' ``SeasonalDetector`` (the rest are its defaults)."""
        params: dict = {"warmup": self.detect_warmup, "esd_window": self.detect_esd_window}
        if not self.detect_records:
            params["extreme_m"] = params["burst_m"] = 0.0  # records of the value and of bursts
        return params

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **overrides: Any) -> "Settings":
        env = os.environ if env is None else env
        root = Path(env.get("OPSCOPILOT_DATA_DIR") or ".opscopilot").expanduser().resolve()
        topics = tuple(t for t in (env.get("OPSCOPILOT_KAFKA_TOPICS") or "signals").split(",") if t)
        s = cls(
            data_root=root,
            clickhouse_url=env.get("OPSCOPILOT_CLICKHOUSE_URL", ""),
            clickhouse_database=env.get("OPSCOPILOT_CLICKHOUSE_DATABASE", "opscopilot"),
            postgres_url=env.get("OPSCOPILOT_POSTGRES_URL", ""),
            kafka_url=env.get("OPSCOPILOT_KAFKA_URL", ""),
            kafka_topics=topics,
            default_tenant=env.get("OPSCOPILOT_DEFAULT_TENANT", "default"),
            retention_days=_env_int(env, "OPSCOPILOT_RETENTION_DAYS", 30, 1),
            dead_letter_retention_days=_env_int(env, "OPSCOPILOT_DEAD_LETTER_RETENTION_DAYS", 90, 1),
            sink_batch_rows=_env_int(env, "OPSCOPILOT_SINK_BATCH_ROWS", 20_000, 1),
            sink_batch_seconds=_env_float(env, "OPSCOPILOT_SINK_BATCH_SECONDS", 1.0, 0.01),
            dedupe_capacity=_env_int(env, "OPSCOPILOT_DEDUPE_CAPACITY", 500_000, 1),
            dedupe_shards=_env_int(env, "OPSCOPILOT_DEDUPE_SHARDS", 1, 1),
            max_record_bytes=_env_int(env, "OPSCOPILOT_MAX_RECORD_BYTES", 256 * 1024, 64),
            max_future_seconds=_env_int(env, "OPSCOPILOT_MAX_FUTURE_SECONDS", 15 * 60, 0),
            progress_seconds=_env_float(env, "OPSCOPILOT_PROGRESS_SECONDS", 2.0, 0.0),
            detect=_env_on(env, "OPSCOPILOT_DETECT"),
            detect_warmup=_env_int(env, "OPSCOPILOT_DETECT_WARMUP", 100, 10),
            detect_records=_env_on(env, "OPSCOPILOT_DETECT_RECORDS"),
            detect_esd_window=_esd_window(env),
            baseline_seconds=_env_float(env, "OPSCOPILOT_BASELINE_SECONDS", 60.0, 1.0),
            log_clustering=_env_on(env, "OPSCOPILOT_LOG_CLUSTERING"),
            novelty_baseline_seconds=_env_float(env, "OPSCOPILOT_NOVELTY_BASELINE_SECONDS", 1800.0, 0.0),
            incidents=_env_on(env, "OPSCOPILOT_INCIDENTS"),
            incident_lateness_seconds=_env_float(env, "OPSCOPILOT_INCIDENT_LATENESS_SECONDS", 30.0, 0.0),
            incident_gap_seconds=_env_float(env, "OPSCOPILOT_INCIDENT_GAP_SECONDS", 900.0, 10.0),
            topology_files=tuple(p for p in (env.get("OPSCOPILOT_TOPOLOGY") or "").split(",") if p),
            api_host=env.get("OPSCOPILOT_API_HOST", "127.0.0.1"),
            api_port=_env_int(env, "OPSCOPILOT_API_PORT", 8080, 0),
            api_rate_per_s=_env_float(env, "OPSCOPILOT_API_RATE", 50.0, 0.1),
            api_burst=_env_int(env, "OPSCOPILOT_API_BURST", 100, 1),
            api_max_body_bytes=_env_int(env, "OPSCOPILOT_API_MAX_BODY_BYTES", 64 * 1024, 256),
            sse_buffer=_env_int(env, "OPSCOPILOT_SSE_BUFFER", 256, 1),
            sse_heartbeat_s=_env_float(env, "OPSCOPILOT_SSE_HEARTBEAT_SECONDS", 15.0, 0.1),
            oidc_jwks=env.get("OPSCOPILOT_OIDC_JWKS", ""),
            oidc_issuer=env.get("OPSCOPILOT_OIDC_ISSUER", ""),
            oidc_audience=env.get("OPSCOPILOT_OIDC_AUDIENCE", ""),
        )
        s = s.with_overrides(**overrides)
        s.validate()
        return s

    def with_overrides(self, **overrides: Any) -> "Settings":
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def validate(self) -> None:
        if self.clickhouse_url:
            scheme = urlsplit(self.clickhouse_url).scheme
            if scheme not in ("chdb", "clickhouse", "clickhouses", "http", "https"):
                raise SettingsError(
                    f"OPSCOPILOT_CLICKHOUSE_URL: scheme {scheme!r} not supported "
                    "(use chdb:///abs/dir or clickhouse://user:pass@host:8123/db)"
                )
        if self.postgres_url and urlsplit(self.postgres_url).scheme not in ("postgresql", "postgres"):
            raise SettingsError("OPSCOPILOT_POSTGRES_URL: expected a postgresql:// URL")
        if self.kafka_url:
            parts = urlsplit(self.kafka_url)
            if parts.scheme != "kafka" or not parts.netloc:
                raise SettingsError("OPSCOPILOT_KAFKA_URL: expected kafka://host:port[,host:port]")

    # -- derived -------------------------------------------------------------------------
    @property
    def resolved_clickhouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_root / 'chdb'}"

    @property
    def kafka_brokers(self) -> list[str]:
        if not self.kafka_url:
            return []
        return [b for b in urlsplit(self.kafka_url).netloc.split(",") if b]

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with passwords in URLs masked, for logs and run records."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, str) and "://" in v:
                v = redact_url(v)
            out[f.name] = str(v) if isinstance(v, Path) else v
        return out
