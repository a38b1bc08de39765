-- round_jobs: what the relay registers in its next Ark batch round (issue 15):
-- inventory boarding, renewals of its own inventory, delegated user renewals
-- and recoveries. job_data: the typed job as JSON (inputs, outputs, pre-signed
-- delegations). status: pending (waiting for a round from not_before on) |
-- in_round (taken by participation_id) | done (commitment_txid created its
-- outputs) | failed (refused for good or out of attempts). attempts: rounds
-- that ended without its outputs.
CREATE TABLE IF NOT EXISTS round_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id VARCHAR(128) NOT NULL UNIQUE,
    kind VARCHAR(32) NOT NULL,
    status VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'in_round', 'done', 'failed')),
    job_data TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    participation_id VARCHAR(64) NULL,
    not_before BIGINT NOT NULL,
    commitment_txid VARCHAR(64) NULL,
    error TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS round_jobs_due ON round_jobs (status, not_before);
CREATE INDEX IF NOT EXISTS round_jobs_kind ON round_jobs (kind, status);
