-- How many messages each queue holds, so ApproximateNumberOfMessages costs the queue's not-visible
-- messages (read through messages_by_visibility) instead of its depth. With one writer there is
-- nothing to contend on. The count includes expired rows not yet reaped; readers subtract those.
--
-- Inserts are counted by a trigger, so every way a message arrives (sends, dead-lettering, moves,
-- SNS fan-out) is counted. Deletes are counted by the code that deletes (storage/sqlite/queues.py,
-- `note_removed`), once per statement: a per-row delete trigger cost DeleteMessageBatch about 15 %
-- more CPU, and every delete of messages is in the few functions of this backend that own them.
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
