-- signing_sessions: one row per signing ceremony with one party (PRD §10.1,
-- §10.6.3). status is the PRD's coarse state; state is the fine state machine
-- (intent_received, ark_tx_prepared, checkpoint_txs_prepared,
-- signatures_collected, ark_executed, completed, failed, expired).
-- steps_completed is a JSON array. ark_txid is recorded before SubmitTx so a
-- crashed session can be reconciled. batch_id links the parties of a batch.
-- version is bumped on every transition (optimistic concurrency).
CREATE TABLE IF NOT EXISTS signing_sessions (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    session_id VARCHAR(64) NOT NULL UNIQUE,
    user_pubkey VARCHAR(64) NOT NULL,
    intent_event_id VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'failed', 'expired')),
    state VARCHAR(32) NOT NULL DEFAULT 'intent_received',
    current_step VARCHAR(50) NULL,
    steps_completed TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    step_deadline BIGINT NULL,
    completed_at BIGINT NULL,
    error_code BIGINT NULL,
    error_message TEXT NULL,
    session_data MEDIUMTEXT NULL,
    batch_id VARCHAR(64) NULL,
    ark_txid VARCHAR(64) NULL,
    version BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS signing_sessions_status ON signing_sessions (status, expires_at);
CREATE INDEX IF NOT EXISTS signing_sessions_batch ON signing_sessions (batch_id);
