-- settlements: hourly L1 commitments (PRD §10.4). One row per period
-- (period_start unique: an hour is never settled twice). merkle_root is over
-- the period's ark txids; status: pending | broadcast | confirmed | published
-- | failed. notice_event_id is the 31342 published for it.
CREATE TABLE IF NOT EXISTS settlements (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    period_start BIGINT NOT NULL UNIQUE,
    period_end BIGINT NOT NULL,
    merkle_root VARCHAR(64) NULL,
    l2_tx_count BIGINT NOT NULL DEFAULT 0,
    l1_txid VARCHAR(64) NULL,
    block_height BIGINT NULL,
    fee_rate_sat_vb BIGINT NULL,
    status VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'broadcast', 'confirmed', 'published', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    notice_event_id VARCHAR(64) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
