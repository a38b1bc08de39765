-- lifts: the saga columns (PRD §5.3). version: optimistic concurrency of the
-- state machine (each step is one UPDATE … WHERE version = ?). issue_data: the
-- engine's JSON for the ark transaction that issues the VTXO (persisted
-- before SubmitTx so a crash resumes it, never rebuilds it).
ALTER TABLE lifts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lifts ADD COLUMN issue_data TEXT NULL;
