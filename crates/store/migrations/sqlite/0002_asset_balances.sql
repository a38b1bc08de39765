-- asset_balances: the reserve behind each asset (PRD §10.6.2): BTC held in lnd
-- channels and in on-chain UTXOs, refreshed from lnd. One row per asset.
CREATE TABLE IF NOT EXISTS asset_balances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id VARCHAR(64) NOT NULL UNIQUE,
    lnd_balance BIGINT NOT NULL DEFAULT 0,
    utxo_balance BIGINT NOT NULL DEFAULT 0,
    last_updated BIGINT NOT NULL,
    FOREIGN KEY (asset_id) REFERENCES assets (asset_id)
);
