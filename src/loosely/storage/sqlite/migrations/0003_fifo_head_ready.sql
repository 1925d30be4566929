-- A FIFO group is ready when its head is visible (AWS delivers a head whose visibility ran out even
-- while later messages of its group are in flight). Rows written under the earlier rule could wait
-- for the group's last in-flight message; set each to its head's visibility.
UPDATE fifo_groups SET ready_at_ms = (
    SELECT m.visible_at_ms FROM messages m
    WHERE m.queue_id = fifo_groups.queue_id AND m.group_id = fifo_groups.group_id
    ORDER BY m.id LIMIT 1)
WHERE EXISTS (
    SELECT 1 FROM messages m WHERE m.queue_id = fifo_groups.queue_id AND m.group_id = fifo_groups.group_id);
