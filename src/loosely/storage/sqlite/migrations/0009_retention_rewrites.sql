-- A queue's new retention period applied to its stored messages in chunks (see 0008): the expiry of
-- messages with ids after after_id and up to last_id (the largest id when the period changed; later
-- messages were sent with the new period) is still to be rewritten. Resumed when the store opens.
CREATE TABLE retention_rewrites (
    queue_id     INTEGER PRIMARY KEY,
    retention_ms INTEGER NOT NULL,
    after_id     INTEGER NOT NULL,
    last_id      INTEGER NOT NULL
);
