-- A FIFO group is ready when its head is visible (AWS delivers a head whose visibility ran out even
-- while later messages of its group are in flight). Rows written under the earlier rule could wait
-- for the group's last in-flight message; set each to its head's visibility.
UPDATE fifo_groups f SET ready_at_ms = h.head_ms
FROM (
    SELECT f2.queue_id, f2.group_id,
           (SELECT m.visible_at_ms FROM messages m
            WHERE m.queue_id = f2.queue_id AND m.group_id = f2.group_id ORDER BY m.id LIMIT 1) AS head_ms
    FROM fifo_groups f2) h
WHERE f.queue_id = h.queue_id AND f.group_id = h.group_id AND h.head_ms IS NOT NULL
  AND f.ready_at_ms <> h.head_ms;
