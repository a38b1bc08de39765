-- taproot_links: a permissionless Taproot Asset lifted through tapd is issued
-- on Ark by its own genesis (issue 20); its ledger id is the genesis txid,
-- while tapd (asset invoices) still names it by its Taproot Asset id. One row
-- per Arkade-issued asset, in both directions unique.
CREATE TABLE IF NOT EXISTS taproot_links (
    asset_id VARCHAR(64) NOT NULL PRIMARY KEY,
    taproot_asset_id VARCHAR(64) NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
