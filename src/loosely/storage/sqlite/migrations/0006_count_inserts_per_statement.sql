-- Inserts into ``messages`` are counted by the statements that insert, as deletes already are
-- (storage/sqlite/queues.py, `note_added` / `note_removed`): once per statement instead of once per
-- row. The row trigger cost a SendMessageBatch of 10 about a third of its INSERT (ten counter
-- UPDATEs inside SQLite where one does), and every insert of messages is in the few functions of
-- this backend that own them (sends, SNS fan-out through the same send, dead-lettering and moves).
DROP TRIGGER IF EXISTS queue_counts_on_insert;
