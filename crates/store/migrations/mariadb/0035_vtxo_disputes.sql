-- vtxo_disputes: VTXOs whose colour (asset, amount) or carrier sats in the
-- ledger disagree with the Ark server's indexer, as the last complete
-- reconciliation found them (docs/operations.md "Reconciliation"). The relay
-- refuses to start a session spending one (error 2006 COLOUR_MISMATCH). Each
-- complete run replaces the whole set. reason: colour | sats. Times are unix
-- seconds.
CREATE TABLE IF NOT EXISTS vtxo_disputes (
    vtxo_id VARCHAR(80) NOT NULL PRIMARY KEY,
    reason VARCHAR(16) NOT NULL CHECK (reason IN ('colour', 'sats')),
    detected_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
