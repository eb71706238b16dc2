-- SSH access tokens (issue 15): short-lived, per sandbox and user, used as the SSH user name.
-- Only the SHA-256 of a token is stored; revoking sets `revoked_at` (kept for the audit trail
-- until the sandbox goes). Numbered after the issue, apart from other features' migrations.
CREATE TABLE ssh_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sandbox_id TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX ssh_tokens_hash ON ssh_tokens (hash);
CREATE INDEX ssh_tokens_sandbox ON ssh_tokens (sandbox_id);
