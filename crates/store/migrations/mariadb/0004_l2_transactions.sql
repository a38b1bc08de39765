-- l2_transactions: every finalized ark transaction applied to the ledger, keyed
-- by ark txid (idempotency of commits). inputs/outputs are JSON arrays of VTXO
-- ids. settlement_id is set when an hourly L1 settlement commits it.
CREATE TABLE IF NOT EXISTS l2_transactions (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ark_txid VARCHAR(64) NOT NULL UNIQUE,
    kind VARCHAR(32) NOT NULL,
    session_id VARCHAR(64) NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    finalized_at BIGINT NOT NULL,
    settlement_id BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS l2_transactions_finalized ON l2_transactions (finalized_at);
CREATE INDEX IF NOT EXISTS l2_transactions_settlement ON l2_transactions (settlement_id);
