-- Anomaly events from the detect stage, with their evidence. One row per reported episode.
-- `ingest_ts` is when the point entered the flow; `stored_at` when the event was written:
-- their difference is the ingest -> anomaly latency.
CREATE TABLE IF NOT EXISTS {db}.anomalies
(
    tenant      LowCardinality(String),
    service     LowCardinality(String),
    name        LowCardinality(String),
    series      String,
    ts          DateTime64(3, 'UTC'),
    value       Float64,
    score       Float32,
    expected    Float64,
    lower       Float64,
    upper       Float64,
    direction   Int8,
    kind        LowCardinality(String),
    parts       Map(LowCardinality(String), Float32),
    detector    LowCardinality(String),
    ingest_ts   DateTime64(3, 'UTC'),
    stored_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, service, series, ts)
TTL toDateTime(stored_at) + INTERVAL {retention_days} DAY;

-- Learned per-series baselines (seasonal profile, level, residual scale), so a restarted job
-- or a new worker resumes without a fresh warm-up. The latest row per series wins.
CREATE TABLE IF NOT EXISTS {db}.detector_state
(
    tenant      LowCardinality(String),
    service     LowCardinality(String),
    series      String,
    detector    LowCardinality(String),
    updated_at  DateTime64(3, 'UTC'),
    points      UInt64,
    state       String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, service, series, detector);
