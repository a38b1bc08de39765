-- processed_events: every Nostr event the relay has handled, unique by event
-- id, so duplicate deliveries (several relays, reconnects, restarts) are
-- harmless. outcome_code is the error code it was rejected with, NULL if it
-- was accepted. created_at is the event's; the newest one drives re-queries.
CREATE TABLE IF NOT EXISTS processed_events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id VARCHAR(64) NOT NULL UNIQUE,
    author VARCHAR(64) NOT NULL,
    kind BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    outcome_code BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS processed_events_created ON processed_events (created_at);
