-- lifts: Lightning on-ramps (PRD §5.3). The row and its preimage are written
-- before the hold invoice is created; payment_hash is unique (one invoice per
-- lift). status: created | invoiced | accepted | issued | settled | announced
-- | cancelled | failed. vtxo_id / ark_txid: the VTXO issued to the user.
CREATE TABLE IF NOT EXISTS lifts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lift_id VARCHAR(64) NOT NULL UNIQUE,
    user_pubkey VARCHAR(64) NOT NULL,
    request_event_id VARCHAR(64) NOT NULL UNIQUE,
    asset_id VARCHAR(64) NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    payment_hash VARCHAR(64) NOT NULL UNIQUE,
    preimage VARCHAR(64) NOT NULL,
    invoice TEXT NULL,
    status VARCHAR(16) NOT NULL CHECK (status IN ('created', 'invoiced', 'accepted', 'issued', 'settled', 'announced', 'cancelled', 'failed')),
    vtxo_id VARCHAR(80) NULL,
    ark_txid VARCHAR(64) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    error_code BIGINT NULL
);
CREATE INDEX IF NOT EXISTS lifts_status ON lifts (status);
