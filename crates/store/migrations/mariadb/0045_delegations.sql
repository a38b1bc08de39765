-- delegations: users' VTXOs the relay renews (or recovers) from a pre-signed
-- delegation (issue 15). renewal_id: renew:<txid:vout> | recover:<txid:vout>.
-- challenge: the sign_renewal challenge sent (JSON, carries the unsigned
-- intent proof and forfeits). status: asked | refused | queued (round job
-- job_id) | done (new_vtxo created) | void (VTXO spent otherwise) | failed.
-- notified_at: the one near-expiry notice sent to the owner.
CREATE TABLE IF NOT EXISTS delegations (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    renewal_id VARCHAR(128) NOT NULL UNIQUE,
    vtxo VARCHAR(80) NOT NULL,
    owner VARCHAR(64) NOT NULL,
    recovery BIGINT NOT NULL DEFAULT 0,
    status VARCHAR(16) NOT NULL CHECK (status IN ('asked', 'refused', 'queued', 'done', 'void', 'failed')),
    challenge MEDIUMTEXT NOT NULL,
    valid_at BIGINT NOT NULL,
    vtxo_expires_at BIGINT NOT NULL,
    job_id VARCHAR(128) NULL,
    new_vtxo VARCHAR(80) NULL,
    reason TEXT NULL,
    notified_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS delegations_vtxo ON delegations (vtxo);
CREATE INDEX IF NOT EXISTS delegations_owner ON delegations (owner, id);
CREATE INDEX IF NOT EXISTS delegations_status ON delegations (status, valid_at);
