-- Sessions of the public API (issue 14): a session's recorded status (`idle`, `running`,
-- `completed`, `failed`, `cancelled`; a send sets `running`, then `idle` or `failed`; a PATCH
-- may set the others), when it ended (set with `completed`, `failed` or `cancelled` through
-- a PATCH, cleared when it is used again), and the user's own metadata (a JSON object, its
-- strings redacted before they are written). What the server records about a session (its
-- credential) stays in its own columns, apart from the user's metadata.
ALTER TABLE agent_sessions ADD COLUMN status TEXT NOT NULL DEFAULT 'idle';
ALTER TABLE agent_sessions ADD COLUMN ended_at TEXT;
ALTER TABLE agent_sessions ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
