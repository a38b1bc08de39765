-- outbox: signed Nostr events waiting to be published (31511, 31340, 31341,
-- 31342, 31501). Written in the same transaction as the state change that
-- caused them; the publisher retries until one relay answers OK. dedupe_key
-- makes each notice unique (e.g. "31341:<event id>").
CREATE TABLE IF NOT EXISTS outbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    dedupe_key VARCHAR(128) NOT NULL UNIQUE,
    kind BIGINT NOT NULL,
    recipient VARCHAR(64) NULL,
    event_json MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT NULL,
    last_error TEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at, next_attempt_at);
