-- jobs: the durable job list. Redis (or the in-process queue) only
-- distributes and wakes workers; a worker that starts re-derives pending jobs
-- from here, so losing Redis never loses work. job_key is the idempotency key
-- (event id, session id). status: pending | running | done | dead.
CREATE TABLE IF NOT EXISTS jobs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_key VARCHAR(128) NOT NULL UNIQUE,
    kind VARCHAR(32) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0,
    available_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_error TEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, available_at);
