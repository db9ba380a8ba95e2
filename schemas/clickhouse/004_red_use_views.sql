-- RED (rate, errors, duration) and USE (utilization, saturation, errors) per service and minute,
-- over the minute rollups. Metric names follow the simulator and common Prometheus names;
-- a metric missing for a service reads as NULL. Query by time range:
--   SELECT * FROM {db}.service_red_1m WHERE service = 'checkout' AND minute >= now() - INTERVAL 1 HOUR
CREATE VIEW IF NOT EXISTS {db}.service_red_1m AS
SELECT
    tenant, service, minute,
    avgMergeIf(avg_state, name IN ('request_rate', 'http_requests_per_second')) AS rate,
    avgMergeIf(avg_state, name IN ('error_rate', 'error_ratio')) AS error_ratio,
    avgMergeIf(avg_state, name IN ('latency_p50_ms')) AS duration_p50_ms,
    avgMergeIf(avg_state, name IN ('latency_p95_ms')) AS duration_p95_ms,
    avgMergeIf(avg_state, name IN ('latency_p99_ms')) AS duration_p99_ms,
    arrayElement(quantilesMergeIf(0.5, 0.9, 0.99)(quantiles_state,
        name IN ('http_request_duration_seconds', 'request_duration_seconds')), 3) AS duration_seconds_q99
FROM {db}.metrics_1m
GROUP BY tenant, service, minute;

CREATE VIEW IF NOT EXISTS {db}.service_use_1m AS
SELECT
    tenant, service, minute,
    avgMergeIf(avg_state, name IN ('cpu_utilization', 'cpu_usage')) AS cpu_utilization,
    avgMergeIf(avg_state, name IN ('memory_mb')) AS memory_mb,
    avgMergeIf(avg_state, name IN ('memory_working_set_bytes')) AS memory_bytes,
    avgMergeIf(avg_state, name IN ('saturation')) AS saturation,
    avgMergeIf(avg_state, name IN ('error_rate', 'error_ratio')) AS error_ratio
FROM {db}.metrics_1m
GROUP BY tenant, service, minute;
