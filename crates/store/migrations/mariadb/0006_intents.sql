-- intents: accepted 31510 intents. Unique by event id and, forever, by
-- (author, action_id): a re-signed intent with a used action_id is a replay
-- (1005). content is the signed JSON as received. status tracks the intent
-- through its signing session; batch_id groups intents of an atomic batch.
CREATE TABLE IF NOT EXISTS intents (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id VARCHAR(64) NOT NULL UNIQUE,
    author VARCHAR(64) NOT NULL,
    action_id VARCHAR(64) NOT NULL,
    intent_type VARCHAR(32) NOT NULL,
    content MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'active', 'completed', 'failed', 'expired')),
    session_id VARCHAR(64) NULL,
    batch_id VARCHAR(64) NULL,
    error_code BIGINT NULL,
    UNIQUE (author, action_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS intents_status ON intents (status);
