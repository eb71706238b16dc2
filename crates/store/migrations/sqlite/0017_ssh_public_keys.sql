-- Registered SSH public keys (issue 15): a user logs in to a sandbox of theirs as
-- `ssh SANDBOX_NAME@HOST` with the matching private key. Public keys are not secrets; the
-- fingerprint (SHA-256, as `ssh-keygen -lf` shows it) is unique across the server, so a key
-- names one user.
CREATE TABLE ssh_public_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX ssh_public_keys_fingerprint ON ssh_public_keys (fingerprint);
CREATE UNIQUE INDEX ssh_public_keys_user_name ON ssh_public_keys (user_id, name);
