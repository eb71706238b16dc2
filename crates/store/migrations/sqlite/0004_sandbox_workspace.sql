-- A sandbox's workspace: the repository it was made from, what its `.amika/config.toml`
-- contributed, and how its setup script went (JSON, `null` for a sandbox without one).
ALTER TABLE sandboxes ADD COLUMN workspace TEXT NOT NULL DEFAULT 'null';
