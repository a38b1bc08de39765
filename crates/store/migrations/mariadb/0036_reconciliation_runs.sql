-- reconciliation_runs: one row per reconciliation of the ledger with the Ark
-- server's indexer (the scheduler's periodic task or `ark-relay reconcile`);
-- /health shows the newest. status: ok (ledger = indexer) | degraded
-- (differences found) | failed (the run did not complete). detail: JSON array
-- of the first differences, or the error of a failed run. Times are unix
-- seconds.
CREATE TABLE IF NOT EXISTS reconciliation_runs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    checked BIGINT NOT NULL,
    in_flight BIGINT NOT NULL,
    differences BIGINT NOT NULL,
    disputed BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL CHECK (status IN ('ok', 'degraded', 'failed')),
    detail TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
