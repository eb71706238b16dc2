-- Every write to a sandbox row notifies channel `amika_sandboxes` with the sandbox's id (issue
-- 19): each server keeps rows in memory to show them, and LISTENs to forget those another
-- server wrote. A trigger rather than a `pg_notify` beside each statement: it runs in the
-- writing transaction (delivered at its commit, never for a rollback) and misses no write,
-- whoever makes it. PostgreSQL only: SQLite has one server, which evicts what it writes.

CREATE FUNCTION amika_notify_sandbox_write() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('amika_sandboxes', OLD.id);
    ELSE
        PERFORM pg_notify('amika_sandboxes', NEW.id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER sandboxes_notify
    AFTER INSERT OR UPDATE OR DELETE ON sandboxes
    FOR EACH ROW EXECUTE FUNCTION amika_notify_sandbox_write();
