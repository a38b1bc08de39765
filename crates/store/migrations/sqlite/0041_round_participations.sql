-- round_participations: the relay's participation in one Ark batch round, a
-- persisted saga (issue 15): phase registered | confirmed | tree_nonces |
-- tree_signatures | forfeits_submitted | finalized | failed; state: the typed
-- saga as JSON (intents, round id, commitment tx); version: optimistic
-- concurrency (each step is one UPDATE … WHERE version = ?); done: finalized
-- or failed (its jobs were ended in the same transaction).
CREATE TABLE IF NOT EXISTS round_participations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    participation_id VARCHAR(64) NOT NULL UNIQUE,
    phase VARCHAR(32) NOT NULL,
    state TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS round_participations_open ON round_participations (done);
