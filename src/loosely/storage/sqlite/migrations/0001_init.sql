-- Initial schema of the SQLite queue store. Instants are epoch milliseconds.

CREATE TABLE queues (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    attributes    TEXT    NOT NULL,  -- JSON object of settable attributes, as GetQueueAttributes shows them
    tags          TEXT    NOT NULL,  -- JSON object
    created_ms    INTEGER NOT NULL,
    modified_ms   INTEGER NOT NULL,
    retention_ms  INTEGER NOT NULL,
    last_purge_ms INTEGER,
    UNIQUE (account_id, region, name)
);

-- When a queue of this key was last deleted (CreateQueue's QueueDeletedRecently).
CREATE TABLE queue_tombstones (
    account_id TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    deleted_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, name)
) WITHOUT ROWID;

-- AUTOINCREMENT: row ids are never reused, so a stale receipt (row id, receive count) can never
-- name a newer message, and row ids double as increasing FIFO sequence numbers.
CREATE TABLE messages (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id               INTEGER NOT NULL,
    message_id             TEXT    NOT NULL,
    body                   TEXT    NOT NULL,
    meta                   TEXT    NOT NULL,
    sent_ms                INTEGER NOT NULL,
    visible_at_ms          INTEGER NOT NULL,
    expires_at_ms          INTEGER NOT NULL,
    receive_count          INTEGER NOT NULL DEFAULT 0,
    first_receive_ms       INTEGER NOT NULL DEFAULT 0,
    group_id               TEXT,
    dead_letter_source_arn TEXT
);

-- Standard claims walk this index from the oldest visible instant: cost independent of depth.
CREATE INDEX messages_by_visibility ON messages (queue_id, visible_at_ms);
-- A FIFO group's messages in send order (head, first ten, consecutive prefix).
CREATE INDEX messages_by_group ON messages (queue_id, group_id, id) WHERE group_id IS NOT NULL;
CREATE INDEX messages_by_expiry ON messages (expires_at_ms);

-- One row per non-empty group of a FIFO queue: the instant the group can next deliver.
CREATE TABLE fifo_groups (
    queue_id    INTEGER NOT NULL,
    group_id    TEXT    NOT NULL,
    ready_at_ms INTEGER NOT NULL,
    PRIMARY KEY (queue_id, group_id)
) WITHOUT ROWID;
CREATE INDEX fifo_groups_by_ready ON fifo_groups (queue_id, ready_at_ms);

-- FIFO deduplication keys seen within the window, naming the original message.
CREATE TABLE dedup (
    queue_id      INTEGER NOT NULL,
    dedup_key     TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    sequence      INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
) WITHOUT ROWID;
CREATE INDEX dedup_by_expiry ON dedup (expires_at_ms);

-- ReceiveRequestAttemptId: what a claim handed out, so a retried receive returns the same messages.
CREATE TABLE receive_attempts (
    queue_id      INTEGER NOT NULL,
    attempt_id    TEXT    NOT NULL,
    refs          TEXT    NOT NULL,  -- JSON list of [row_id, receive_count, visible_at_ms]
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (queue_id, attempt_id)
) WITHOUT ROWID;
CREATE INDEX receive_attempts_by_expiry ON receive_attempts (expires_at_ms);

CREATE TABLE move_tasks (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    task_handle         TEXT    NOT NULL UNIQUE,
    source_queue_id     INTEGER NOT NULL,
    source_arn          TEXT    NOT NULL,
    destination_arn     TEXT,
    max_per_second      INTEGER,
    status              TEXT    NOT NULL,
    approximate_to_move INTEGER NOT NULL,
    moved               INTEGER NOT NULL,
    started_ms          INTEGER NOT NULL,
    failure_reason      TEXT,
    lease_owner         TEXT,
    lease_until_ms      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX move_tasks_by_source ON move_tasks (source_arn, started_ms);
CREATE INDEX move_tasks_by_status ON move_tasks (status, lease_until_ms);
