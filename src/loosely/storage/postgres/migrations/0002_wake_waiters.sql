-- Notify only when someone waits: nodes with long polls parked on a queue register here, and a send
-- runs pg_notify only while a registration for its queue is live. A notifying commit serializes
-- with every other notifying commit in the cluster (PostgreSQL's notification queue lock is held
-- through commit), so skipping NOTIFY when nobody waits gives back group commit to busy queues.
--
-- Why no wake-up is lost (storage/postgres/_wake.py has the node's side):
--   * a send calls wake_waiters(), which takes the queue's advisory lock SHARED (held to commit) and
--     only then reads this table with a fresh snapshot (VOLATILE function, READ COMMITTED);
--   * a node registers with register_waiters(), which takes the same lock EXCLUSIVE, so it waits
--     for every send already holding the lock to commit; the node claims again after registering.
--   Either the send took its lock first (its message is committed before the registration is, so
--   the claim that follows the registration sees it) or the registration did (the send's read comes
--   after the registration committed, so it notifies).
-- Instants here are the database's clock (db_now_ms), so node clocks never matter to liveness.
-- Writers now call wake_other_waiters (0007_wake_other_nodes.sql), which skips the writer's own
-- registrations (that node wakes its waiters itself after the commit); wake_waiters stays for nodes
-- of earlier versions.

CREATE TABLE waiters (
    queue_id BIGINT NOT NULL,
    node     TEXT COLLATE "C" NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (queue_id, node)
);

CREATE FUNCTION db_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

-- Called once by every send, after or while it writes: notify the queue's channel if a node waits.
CREATE FUNCTION wake_waiters(p_channel TEXT, p_queue BIGINT, p_key INTEGER) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_key, (p_queue % 2147483647)::integer);
    IF EXISTS (SELECT 1 FROM waiters w
               WHERE w.queue_id = p_queue
                 AND w.until_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint) THEN
        PERFORM pg_notify(p_channel, p_queue::text);
        RETURN true;
    END IF;
    RETURN false;
END
$$;

-- Register (or renew) node p_node as waiting on p_queues until now + p_ttl_ms. Locks are taken in
-- queue order, so two registrations never deadlock; long-expired rows of any node are dropped.
CREATE FUNCTION register_waiters(p_node TEXT, p_queues BIGINT[], p_key INTEGER, p_ttl_ms BIGINT) RETURNS VOID
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    v_queue BIGINT;
BEGIN
    FOR v_queue IN SELECT DISTINCT q FROM unnest(p_queues) AS q ORDER BY q LOOP
        PERFORM pg_advisory_xact_lock(p_key, (v_queue % 2147483647)::integer);
    END LOOP;
    INSERT INTO waiters (queue_id, node, until_ms)
    SELECT DISTINCT q, p_node, db_now_ms() + p_ttl_ms FROM unnest(p_queues) AS q
    ON CONFLICT (queue_id, node) DO UPDATE SET until_ms = excluded.until_ms;
    DELETE FROM waiters WHERE until_ms < db_now_ms() - 60000;
END
$$;
