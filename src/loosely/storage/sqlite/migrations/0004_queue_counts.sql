-- How many messages each queue holds, kept by triggers, so ApproximateNumberOfMessages costs the
-- queue's not-visible messages (read through messages_by_visibility) instead of its depth. Triggers
-- see every write (sends, claims that dead-letter or drop expired rows, deletes, moves, expiry,
-- purges, SNS fan-out), so no code path can forget the counter; with one writer there is nothing to
-- contend on. The count includes expired rows not yet reaped; readers subtract those.
CREATE TABLE queue_counts (
    queue_id INTEGER PRIMARY KEY,
    messages INTEGER NOT NULL
);
INSERT INTO queue_counts (queue_id, messages)
SELECT q.id, (SELECT count(*) FROM messages m WHERE m.queue_id = q.id) FROM queues q;

CREATE TRIGGER queue_counts_on_create AFTER INSERT ON queues BEGIN
    INSERT OR REPLACE INTO queue_counts (queue_id, messages) VALUES (NEW.id, 0);
END;
CREATE TRIGGER queue_counts_on_drop AFTER DELETE ON queues BEGIN
    DELETE FROM queue_counts WHERE queue_id = OLD.id;
END;
CREATE TRIGGER queue_counts_on_insert AFTER INSERT ON messages BEGIN
    UPDATE queue_counts SET messages = messages + 1 WHERE queue_id = NEW.queue_id;
END;
CREATE TRIGGER queue_counts_on_delete AFTER DELETE ON messages BEGIN
    UPDATE queue_counts SET messages = messages - 1 WHERE queue_id = OLD.queue_id;
END;
