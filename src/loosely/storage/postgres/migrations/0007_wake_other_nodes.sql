-- Notify only when another node waits: a writer passes its own node, whose registrations it skips.
-- The writing node wakes its own waiters itself once the commit returns, so a NOTIFY that only its
-- own listener would hear buys nothing and still serializes the commit with every other notifying
-- commit in the cluster (PostgreSQL's notification queue lock). One node alone never notifies.
--
-- Why no wake-up is lost (0002_wake_waiters.sql has the argument this extends):
--   * a registration of another node: unchanged. The writer takes the queue's advisory lock
--     SHARED and reads `waiters` afterwards with a fresh snapshot; registration takes the lock
--     EXCLUSIVE and its node claims again after registering. Either the write committed before the
--     registration (the claim after it sees the write) or the write reads the registration and
--     notifies.
--   * a registration of the writer's own node: no NOTIFY. The node wakes its waiters on the queue
--     after the commit returns, and advances the queue's wake-up counter, which every receiver reads
--     before its claim: a receiver whose claim began after that instant sees the committed write
--     (the commit came first), and one whose claim began earlier finds the counter moved when it
--     goes to wait, or is woken in its wait. That is exactly what the echo of its own NOTIFY did,
--     only sooner. A writer that does not know its commit's outcome (a connection lost at commit)
--     wakes its waiters all the same: at worst they claim in vain.
--
-- wake_waiters (0002) stays, unchanged, for nodes of earlier versions during a rolling upgrade:
-- they notify for every registration, which wakes new nodes as before; new nodes skip only their
-- own rows, so they still notify for old nodes' registrations.

CREATE FUNCTION wake_other_waiters(p_channel TEXT, p_queue BIGINT, p_key INTEGER, p_node TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_key, (p_queue % 2147483647)::integer);
    IF EXISTS (SELECT 1 FROM waiters w
               WHERE w.queue_id = p_queue
                 AND w.node <> p_node
                 AND w.until_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint) THEN
        PERFORM pg_notify(p_channel, p_queue::text);
        RETURN true;
    END IF;
    RETURN false;
END
$$;
