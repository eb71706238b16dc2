-- Conversations with the agents in sandboxes (issue 7): one row per session, one per send
-- ("turn", which is also what the job API calls a job). Kept column-for-column in step with
-- migrations/postgres/0002_agent_sessions.sql.
--
-- Every text here was redacted by the server before it was written: messages, replies and
-- errors never hold a value that was injected into the sandbox. Both tables go with their
-- sandbox (ON DELETE CASCADE).

CREATE TABLE agent_sessions (
    id               TEXT PRIMARY KEY,
    sandbox_id       TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    org_id           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    agent            TEXT NOT NULL,
    -- The agent's own id of the conversation (what `--resume` takes); NULL until it gave one.
    agent_session_id TEXT,
    credential_name  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX agent_sessions_sandbox ON agent_sessions (sandbox_id, updated_at);

CREATE TABLE agent_turns (
    id               TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    sandbox_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    message          TEXT NOT NULL,
    response         TEXT,
    is_error         BOOLEAN NOT NULL,
    error_code       TEXT,
    exit_code        INTEGER,
    is_new_session   BOOLEAN NOT NULL,
    agent_session_id TEXT,
    cost_usd         REAL,
    duration_ms      INTEGER,
    -- When a pending or running turn is given up for lost (its server stopped).
    deadline_at      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT
);
CREATE INDEX agent_turns_session ON agent_turns (session_id, created_at);
