-- amika's schema for PostgreSQL. Kept column-for-column in step with migrations/sqlite so that
-- the shared SQL in src/shared.rs runs unchanged on both.
--
-- JSON documents are TEXT rather than JSONB: nothing queries inside them, and TEXT lets both
-- backends bind the same String parameters. Names use the "C" collation so that ORDER BY name
-- sorts bytewise, exactly as SQLite does, whatever locale the cluster was created with.
-- Sealed values are (kek_id, wrapped_key, ciphertext); the store never sees plaintext.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX orgs_name ON orgs (name);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    name        TEXT COLLATE "C" NOT NULL,
    is_admin    BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_org_name ON users (org_id, name);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    hash         TEXT NOT NULL,
    obfuscated   TEXT NOT NULL,
    last_used_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE secrets (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT,
    scope       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    kek_id      TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
-- A user-scoped name belongs to its owner, an org-scoped one to the whole org.
CREATE UNIQUE INDEX secrets_user_name ON secrets (user_id, name) WHERE scope = 'user';
CREATE UNIQUE INDEX secrets_org_name ON secrets (org_id, name) WHERE scope = 'org';

CREATE TABLE credentials (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id),
    user_id         TEXT NOT NULL REFERENCES users (id),
    kind            TEXT NOT NULL,
    credential_type TEXT NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    scope           TEXT NOT NULL,
    is_default      BOOLEAN NOT NULL,
    version         BIGINT NOT NULL,
    expires_at      TIMESTAMPTZ,
    kek_id          TEXT NOT NULL,
    wrapped_key     BYTEA NOT NULL,
    ciphertext      BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX credentials_user_kind_name ON credentials (user_id, kind, name) WHERE scope = 'user';
CREATE UNIQUE INDEX credentials_org_kind_name ON credentials (org_id, kind, name) WHERE scope = 'org';

CREATE TABLE sandboxes (
    id                         TEXT PRIMARY KEY,
    org_id                     TEXT NOT NULL REFERENCES orgs (id),
    user_id                    TEXT NOT NULL REFERENCES users (id),
    name                       TEXT COLLATE "C" NOT NULL,
    provider                   TEXT NOT NULL,
    state                      TEXT NOT NULL,
    error_message              TEXT,
    secret_env_vars            TEXT NOT NULL,
    agent_credentials          TEXT NOT NULL,
    resolved_agent_credentials TEXT NOT NULL,
    secret_names               TEXT NOT NULL,
    injection                  TEXT NOT NULL,
    options                    TEXT NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sandboxes_user_name ON sandboxes (user_id, name);

-- No foreign keys: the trail must outlive the objects (and users) it mentions.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    object_name TEXT NOT NULL,
    version     BIGINT,
    sandbox_id  TEXT,
    detail      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_events_org_time ON audit_events (org_id, created_at);

-- One row, id 'canary': a known value sealed under the master key, so a wrong key is caught at
-- start instead of when a user first reads a secret.
CREATE TABLE vault_meta (
    id          TEXT PRIMARY KEY CHECK (id = 'canary'),
    kek_id      TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL
);
