-- vtxos: every VTXO the relay knows, with its colour (PRD §10.6.1).
-- vtxo_id is the outpoint `txid:vout`. sats is the BTC carrier amount arkd
-- sees; asset_id + amount is the colour (asset_id NULL = uncoloured carrier,
-- amount then 0). status: available (relay inventory) | assigned (owned,
-- spendable) | spent | expired. locked_by / locked_at: the signing session
-- holding it (a VTXO is locked by at most one session). tx_id is the ark txid
-- that created it, spent_by_txid the one that spent it. tapscripts is the JSON
-- array of the output's tapscript leaves (hex), stored rather than re-derived.
-- Times are unix seconds.
CREATE TABLE IF NOT EXISTS vtxos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vtxo_id VARCHAR(80) NOT NULL UNIQUE,
    owner_pubkey VARCHAR(64) NOT NULL,
    asset_id VARCHAR(64) NULL,
    amount BIGINT NOT NULL DEFAULT 0 CHECK (amount >= 0),
    sats BIGINT NOT NULL CHECK (sats >= 0),
    status VARCHAR(16) NOT NULL CHECK (status IN ('available', 'assigned', 'spent', 'expired')),
    created_at BIGINT NOT NULL,
    assigned_at BIGINT NULL,
    spent_at BIGINT NULL,
    expires_at BIGINT NULL,
    tx_id VARCHAR(64) NULL,
    spent_by_txid VARCHAR(64) NULL,
    proof_data TEXT NULL,
    metadata TEXT NULL,
    tapscripts TEXT NOT NULL,
    locked_by VARCHAR(64) NULL,
    locked_at BIGINT NULL,
    FOREIGN KEY (asset_id) REFERENCES assets (asset_id)
);
CREATE INDEX IF NOT EXISTS vtxos_owner_status ON vtxos (owner_pubkey, status);
CREATE INDEX IF NOT EXISTS vtxos_locked_by ON vtxos (locked_by);
CREATE INDEX IF NOT EXISTS vtxos_status ON vtxos (status);
