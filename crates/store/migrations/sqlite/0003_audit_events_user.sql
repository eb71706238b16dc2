-- A member lists only their own events: filtered in SQL before the LIMIT, answered by this
-- index (org, user, newest first) rather than by scanning the whole org's trail.
CREATE INDEX audit_events_org_user_time ON audit_events (org_id, user_id, created_at);
