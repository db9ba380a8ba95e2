-- Raw normalized signals. One row per metric sample, log line, change event or alert.
-- ORDER BY serves per-service / per-series time-range reads: tenant, kind and service narrow
-- to a few granules, name + series to one series, ts to the window.
-- TTL follows ingest time, not event time, so a backfill of old data is kept.
CREATE TABLE IF NOT EXISTS {db}.signals
(
    id          String,
    tenant      LowCardinality(String),
    ts          DateTime64(3, 'UTC'),
    ingest_ts   DateTime64(3, 'UTC'),
    kind        LowCardinality(String),
    service     LowCardinality(String),
    environment LowCardinality(String),
    source      LowCardinality(String),
    name        LowCardinality(String),
    series      String,
    value       Nullable(Float64),
    body        String CODEC(ZSTD(3)),
    severity    LowCardinality(String),
    labels      Map(LowCardinality(String), String),
    trace_id    String,
    change_id   String,
    change_type LowCardinality(String),
    version     String,
    author      String,
    link        String,
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_trace trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (tenant, kind, service, name, series, ts)
TTL toDateTime(ingest_ts) + INTERVAL {retention_days} DAY
SETTINGS index_granularity = 8192;

-- Records that could not be used, with the reason. Nothing is dropped silently.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    id          String,
    received_at DateTime64(3, 'UTC'),
    tenant      LowCardinality(String),
    source      LowCardinality(String),
    stage       LowCardinality(String),
    field       String,
    reason      String,
    position    String,
    raw         String CODEC(ZSTD(3)),
    INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(received_at)
ORDER BY (source, stage, received_at)
TTL toDateTime(received_at) + INTERVAL {dead_letter_retention_days} DAY;
