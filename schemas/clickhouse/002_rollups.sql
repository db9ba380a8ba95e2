-- Minute rollups, maintained by materialized views on insert into signals.
-- Read them with the -Merge combinators, e.g.
--   SELECT series, minute, avgMerge(avg_state), countMerge(count_state) ... GROUP BY series, minute
-- `ingested_at` (latest ingest into the bucket) drives the TTL, so backfilled history is kept.
CREATE TABLE IF NOT EXISTS {db}.metrics_1m
(
    tenant          LowCardinality(String),
    service         LowCardinality(String),
    name            LowCardinality(String),
    series          String,
    minute          DateTime('UTC'),
    avg_state       AggregateFunction(avg, Float64),
    min_state       AggregateFunction(min, Float64),
    max_state       AggregateFunction(max, Float64),
    count_state     AggregateFunction(count),
    quantiles_state AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64),
    ingested_at     SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, service, name, series, minute)
TTL ingested_at + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.metrics_1m_mv TO {db}.metrics_1m AS
SELECT
    tenant, service, name, series,
    toStartOfMinute(ts) AS minute,
    avgState(assumeNotNull(value)) AS avg_state,
    minState(assumeNotNull(value)) AS min_state,
    maxState(assumeNotNull(value)) AS max_state,
    countState() AS count_state,
    quantilesState(0.5, 0.9, 0.99)(assumeNotNull(value)) AS quantiles_state,
    max(toDateTime(ingest_ts)) AS ingested_at
FROM {db}.signals
WHERE kind = 'metric'
GROUP BY tenant, service, name, series, minute;

CREATE TABLE IF NOT EXISTS {db}.log_counts_1m
(
    tenant      LowCardinality(String),
    service     LowCardinality(String),
    severity    LowCardinality(String),
    minute      DateTime('UTC'),
    count       SimpleAggregateFunction(sum, UInt64),
    ingested_at SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, service, severity, minute)
TTL ingested_at + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.log_counts_1m_mv TO {db}.log_counts_1m AS
SELECT
    tenant, service, severity,
    toStartOfMinute(ts) AS minute,
    count() AS count,
    max(toDateTime(ingest_ts)) AS ingested_at
FROM {db}.signals
WHERE kind = 'log'
GROUP BY tenant, service, severity, minute;
