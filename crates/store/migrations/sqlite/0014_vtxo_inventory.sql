-- vtxo_inventory: replenishment batches of the relay's hot VTXO inventory
-- (PRD §10.3). The inventory level itself is the count of vtxos rows owned by
-- the relay with status 'available'; this table records each batch requested
-- from arkd (why, at what fee rate, how many arrived). status: requested |
-- confirmed | failed.
CREATE TABLE IF NOT EXISTS vtxo_inventory (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id VARCHAR(64) NOT NULL UNIQUE,
    requested BIGINT NOT NULL,
    created BIGINT NOT NULL DEFAULT 0,
    reason VARCHAR(16) NOT NULL,
    fee_rate_sat_vb BIGINT NULL,
    status VARCHAR(16) NOT NULL CHECK (status IN ('requested', 'confirmed', 'failed')),
    l1_txid VARCHAR(64) NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT NULL
);
