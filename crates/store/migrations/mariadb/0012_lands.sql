-- lands: Lightning off-ramps (PRD §5.4), one row per payment hash (never paid
-- twice). status: received | vtxo_moved | paying | succeeded | failed |
-- refunded. PAYING is written before SendPaymentV2; preimage is the proof of
-- payment; refund_vtxo_id is set when a terminally failed payment was refunded.
CREATE TABLE IF NOT EXISTS lands (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    intent_event_id VARCHAR(64) NOT NULL UNIQUE,
    user_pubkey VARCHAR(64) NOT NULL,
    asset_id VARCHAR(64) NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    fee BIGINT NOT NULL DEFAULT 0,
    payment_hash VARCHAR(64) NOT NULL UNIQUE,
    invoice TEXT NOT NULL,
    fee_limit_sats BIGINT NOT NULL DEFAULT 0,
    status VARCHAR(16) NOT NULL CHECK (status IN ('received', 'vtxo_moved', 'paying', 'succeeded', 'failed', 'refunded')),
    preimage VARCHAR(64) NULL,
    ark_txid VARCHAR(64) NULL,
    refund_vtxo_id VARCHAR(80) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    error_code BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS lands_status ON lands (status);
