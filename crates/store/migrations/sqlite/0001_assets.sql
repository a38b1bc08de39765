-- assets: every asset the ledger can carry as colour (PRD §10.6.2).
-- asset_id is tapd's 32-byte asset id (hex); ticker is for display and alias
-- resolution (gBTC). total_supply is the colour in circulation in the ledger
-- (kept equal to the sum of unspent VTXO colour); reserve_amount is the BTC
-- reserve recorded for relay-issued assets. enabled is 0/1.
CREATE TABLE IF NOT EXISTS assets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(100) NOT NULL,
    ticker VARCHAR(20) NOT NULL,
    asset_type VARCHAR(16) NOT NULL CHECK (asset_type IN ('relay_issued', 'permissionless')),
    decimals BIGINT NOT NULL DEFAULT 0,
    total_supply BIGINT NOT NULL DEFAULT 0 CHECK (total_supply >= 0),
    reserve_amount BIGINT NOT NULL DEFAULT 0 CHECK (reserve_amount >= 0),
    created_at BIGINT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    metadata TEXT NULL
);
CREATE INDEX IF NOT EXISTS assets_ticker ON assets (ticker);
