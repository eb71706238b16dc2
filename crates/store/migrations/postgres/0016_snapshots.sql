-- Snapshots (issue 16): a sandbox's home and workspace captured as an encrypted archive in the
-- data dir (`<data>/snapshots/<id>.snap`). Kept column-for-column in step with the other
-- dialect's 0016_snapshots.sql. Numbered after the issue, not the previous migration, so that
-- migrations of work done at the same time do not take the same number.
--
-- The archive's data key is stored here wrapped under the master key (kek_id, wrapped_key),
-- as a secret's is; the archive itself never touches the database. A snapshot outlives its
-- source sandbox (no foreign key): source_sandbox_id and _name say where it came from.

CREATE TABLE snapshots (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    name                TEXT NOT NULL,
    description         TEXT,
    mode                TEXT NOT NULL,
    state               TEXT NOT NULL,
    error_message       TEXT,
    provider            TEXT NOT NULL,
    source_sandbox_id   TEXT,
    source_sandbox_name TEXT,
    -- JSON: the source's repository (url, name, branch, commit), NULL without one.
    repo                TEXT,
    preset              TEXT,
    size                TEXT,
    size_bytes          BIGINT,
    kek_id              TEXT NOT NULL,
    wrapped_key         BYTEA NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX snapshots_user_name ON snapshots (user_id, name);
CREATE INDEX snapshots_org ON snapshots (org_id);
