-- How many messages each queue holds, so ApproximateNumberOfMessages costs the queue's not-visible
-- messages (read through messages_by_visibility) instead of its depth.
--
-- Statement-level triggers keep the counters, so every write is counted whatever its path (sends,
-- claims that dead-letter, deletes, moves, expiry, purges, SNS fan-out, and nodes still running an
-- older release during a rolling upgrade), once per statement rather than once per row.
--
-- One counter row per queue would serialise every send to a queue: a row lock is held from the
-- statement to the commit, fsync included. So each backend counts into a row of its own (shard =
-- its pid): a backend runs one transaction at a time, so no two transactions ever wait for each
-- other here. A queue's count is the sum of its rows (one per backend that wrote to it, plus the
-- folded total in shard 0). Rows of backends that have exited are folded into shard 0 by the
-- expiry worker, so the rows per queue stay about the number of live connections.
--
-- The count includes expired rows not yet reaped; readers subtract those.

CREATE TABLE queue_counts (
    queue_id BIGINT  NOT NULL,
    shard    INTEGER NOT NULL,  -- the writing backend's pid; 0: folded totals
    messages BIGINT  NOT NULL,
    PRIMARY KEY (queue_id, shard)
);

-- No writer may slip between the initial count and the triggers (nodes of an older release too).
LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO queue_counts (queue_id, shard, messages)
SELECT queue_id, 0, count(*) FROM messages GROUP BY queue_id;

CREATE FUNCTION count_inserted_messages() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO queue_counts AS c (queue_id, shard, messages)
    SELECT n.queue_id, pg_backend_pid(), count(*) FROM inserted_messages n GROUP BY n.queue_id ORDER BY n.queue_id
    ON CONFLICT (queue_id, shard) DO UPDATE SET messages = c.messages + excluded.messages;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_deleted_messages() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO queue_counts AS c (queue_id, shard, messages)
    SELECT o.queue_id, pg_backend_pid(), -count(*) FROM deleted_messages o GROUP BY o.queue_id ORDER BY o.queue_id
    ON CONFLICT (queue_id, shard) DO UPDATE SET messages = c.messages + excluded.messages;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_counted_on_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS inserted_messages
    FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_messages();
CREATE TRIGGER messages_counted_on_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS deleted_messages
    FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_messages();
