-- Log template clusters (operators.logcluster): every stored log line carries its cluster id.
ALTER TABLE {db}.signals ADD COLUMN IF NOT EXISTS cluster_id LowCardinality(String) DEFAULT '';

-- Each cluster's template text, written by the stream job when a cluster is new. A template
-- that generalizes becomes a cluster of its own (id from its content); the clusters it took
-- over stay as rows with `alias_of` naming it, so ids already stored on log lines resolve.
CREATE TABLE IF NOT EXISTS {db}.log_templates
(
    tenant      LowCardinality(String),
    cluster_id  String,
    template    String,
    first_seen  DateTime64(3, 'UTC'),
    updated_at  DateTime64(3, 'UTC'),
    alias_of    String DEFAULT ''
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, cluster_id);

-- Per cluster, service and minute: lines, severity mix, an example line. Cluster statistics
-- (first / last seen, counts, services, growth) are reads over it. TTL by ingest time, so
-- backfilled history is kept (as for the other rollups).
CREATE TABLE IF NOT EXISTS {db}.log_clusters_1m
(
    tenant      LowCardinality(String),
    cluster_id  String,
    service     LowCardinality(String),
    minute      DateTime('UTC'),
    lines       SimpleAggregateFunction(sum, UInt64),
    errors      SimpleAggregateFunction(sum, UInt64),
    warnings    SimpleAggregateFunction(sum, UInt64),
    first_seen  SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen   SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    example     SimpleAggregateFunction(any, String),
    ingested_at SimpleAggregateFunction(max, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, cluster_id, service, minute)
TTL ingested_at + INTERVAL {retention_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.log_clusters_1m_mv TO {db}.log_clusters_1m AS
SELECT tenant, cluster_id, service, toStartOfMinute(ts) AS minute,
       count() AS lines,
       countIf(severity IN ('error', 'critical')) AS errors,
       countIf(severity = 'warning') AS warnings,
       min(ts) AS first_seen, max(ts) AS last_seen,
       any(substring(body, 1, 1000)) AS example,
       max(toDateTime(ingest_ts)) AS ingested_at
FROM {db}.signals
WHERE kind = 'log' AND cluster_id != ''
GROUP BY tenant, cluster_id, service, minute;

-- Novel errors (operators.novelty): one row per (tenant, service, cluster) for a new kind of
-- trouble (kind 'novel'), and one per episode for a known trouble cluster's rate spike (kind
-- 'rate_spike', keyed by its minute).
CREATE TABLE IF NOT EXISTS {db}.novel_errors
(
    tenant      LowCardinality(String),
    service     LowCardinality(String),
    cluster_id  String,
    kind        LowCardinality(String),
    spike_minute UInt32,
    template    String,
    label       String,
    severity    LowCardinality(String),
    first_seen  DateTime64(3, 'UTC'),
    examples    Array(String),
    nearest_ids        Array(String),
    nearest_templates  Array(String),
    nearest_similarity Array(Float32),
    per_minute         Float32,
    usual_per_minute   Float32,
    detected_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(detected_at)
ORDER BY (tenant, service, cluster_id, kind, spike_minute);
