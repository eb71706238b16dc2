-- Org-scope snapshots (issue 16): `scope` is `user` (only the creator sees it) or `org` (every
-- member of the org sees it and starts sandboxes from it). Names stay unique per user, whatever
-- the scope; an org snapshot's name is also unique in its org. Kept in step with the other
-- dialect's 0018_snapshot_scope.sql.

ALTER TABLE snapshots ADD COLUMN scope TEXT NOT NULL DEFAULT 'user';
CREATE UNIQUE INDEX snapshots_org_name ON snapshots (org_id, name) WHERE scope = 'org';
