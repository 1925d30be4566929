-- Messages to delete in chunks, one row per queue: a purge's (those sent at or before
-- sent_before_ms) or a deleted queue's (all of them). Deleting a deep queue's messages in one
-- transaction held the single writer, and so every other queue's writes, for its whole length (0.6 s
-- per 300,000 messages) and needed WAL space for all of it; in chunks, other groups commit between
-- them. A sweep that a crash interrupted is resumed when the store opens again.
CREATE TABLE message_sweeps (
    queue_id       INTEGER PRIMARY KEY,
    sent_before_ms INTEGER NOT NULL
);
