-- signing_challenges: each 31511 challenge sent in a session and the 31512
-- answer (PRD §10.6.3). step numbers the challenges of a session (1 = ark tx,
-- 2 = checkpoints); challenge_data is the payload signed over (PSBTs,
-- sighashes, colour). event_id is the 31511 sent, response_event_id the
-- 31512 that answered it.
CREATE TABLE IF NOT EXISTS signing_challenges (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    session_id VARCHAR(64) NOT NULL,
    step BIGINT NOT NULL,
    challenge_type VARCHAR(50) NOT NULL,
    challenge_data MEDIUMTEXT NOT NULL,
    human_readable TEXT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    responded_at BIGINT NULL,
    signature_response MEDIUMTEXT NULL,
    event_id VARCHAR(64) NULL,
    response_event_id VARCHAR(64) NULL,
    UNIQUE (session_id, step),
    FOREIGN KEY (session_id) REFERENCES signing_sessions (session_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
