-- The incident stage's ClickHouse side: change overlays (the deploy-overlay join's result, for
-- charts to draw change markers over any series) and the service graph's versions.

-- One row per change once its after-window has closed: symptoms of the changed service and of
-- its graph neighbours in the windows before and after it, and its likelihood of having caused
-- an incident (0 when it was no suspect). A replay folds into the same rows.
CREATE TABLE IF NOT EXISTS {db}.change_overlays
(
    tenant                     LowCardinality(String),
    change_id                  String,
    service                    LowCardinality(String),
    change_type                LowCardinality(String),
    version                    String,
    ts                         DateTime64(3, 'UTC'),
    window_ms                  UInt32,
    symptoms_before            UInt32,
    symptoms_after             UInt32,
    neighbour_symptoms_before  UInt32,
    neighbour_symptoms_after   UInt32,
    novel_after                UInt32,
    incident_id                String,
    likelihood                 Float32,
    stored_at                  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, service, ts, change_id)
TTL toDateTime(stored_at) + INTERVAL {retention_days} DAY;

-- Every change to the service graph at its event time (an edge seen, re-weighted, declared, or
-- removed when `removed` = 1): the graph at any past moment is the replay of its rows up to then.
CREATE TABLE IF NOT EXISTS {db}.topology_edges
(
    tenant     LowCardinality(String),
    ts         DateTime64(3, 'UTC'),
    caller     LowCardinality(String),
    callee     LowCardinality(String),
    source     LowCardinality(String),
    weight     Float64,
    removed    UInt8,
    stored_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stored_at)
ORDER BY (tenant, ts, caller, callee, source)
TTL toDateTime(stored_at) + INTERVAL {retention_days} DAY;
