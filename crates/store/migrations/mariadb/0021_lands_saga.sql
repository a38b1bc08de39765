-- lands: the saga columns (PRD §5.4). version: optimistic concurrency of the
-- state machine. refund_data: the engine's JSON for the refund transaction of
-- a terminally failed payment (persisted before SubmitTx).
ALTER TABLE lands ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lands ADD COLUMN refund_data TEXT NULL;
