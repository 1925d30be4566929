-- Initial schema of the PostgreSQL queue store. Instants are epoch milliseconds (BIGINT).
-- Applied with search_path set to the store's schema, so names here are unqualified.
-- Identifiers that are compared or sorted use COLLATE "C": byte order, as AWS and SQLite sort.

CREATE TABLE queues (
    id            BIGSERIAL PRIMARY KEY,
    account_id    TEXT COLLATE "C" NOT NULL,
    region        TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    fifo          BOOLEAN NOT NULL,
    attributes    JSONB   NOT NULL,  -- settable attributes, as GetQueueAttributes shows them
    tags          JSONB   NOT NULL,
    created_ms    BIGINT  NOT NULL,
    modified_ms   BIGINT  NOT NULL,
    retention_ms  BIGINT  NOT NULL,
    last_purge_ms BIGINT,
    UNIQUE (account_id, region, name)
);

-- When a queue of this key was last deleted (CreateQueue's QueueDeletedRecently).
CREATE TABLE queue_tombstones (
    account_id TEXT COLLATE "C" NOT NULL,
    region     TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    deleted_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, name)
);
CREATE INDEX queue_tombstones_by_time ON queue_tombstones (deleted_ms);

-- One sequence for every queue: row ids are never reused, so a stale receipt (row id, receive
-- count) never names a newer message, and row ids double as FIFO sequence numbers. Within a FIFO
-- group ids are taken while the group's row is locked, so id order is commit order there.
CREATE SEQUENCE messages_id_seq AS BIGINT;

-- No foreign key to queues: every send would take a KEY SHARE lock on the queue row, and many
-- concurrent senders on one queue would then contend on multixacts. Sends join the queue row
-- instead; rows orphaned by a racing DeleteQueue expire with their retention.
CREATE TABLE messages (
    id                     BIGINT  PRIMARY KEY DEFAULT nextval('messages_id_seq'),
    queue_id               BIGINT  NOT NULL,
    visible_at_ms          BIGINT  NOT NULL,
    expires_at_ms          BIGINT  NOT NULL,
    sent_ms                BIGINT  NOT NULL,
    receive_count          INTEGER NOT NULL DEFAULT 0,
    first_receive_ms       BIGINT  NOT NULL DEFAULT 0,
    message_id             TEXT    NOT NULL,
    group_id               TEXT COLLATE "C",
    dead_letter_source_arn TEXT,
    meta                   TEXT    NOT NULL,
    body                   TEXT    NOT NULL
);
ALTER SEQUENCE messages_id_seq OWNED BY messages.id;

-- Standard claims walk this index from the oldest visible instant: cost independent of depth.
CREATE INDEX messages_by_visibility ON messages (queue_id, visible_at_ms, id);
-- A FIFO group's messages in send order (head, first ten, consecutive prefix).
CREATE INDEX messages_by_group ON messages (queue_id, group_id, id) WHERE group_id IS NOT NULL;
CREATE INDEX messages_by_expiry ON messages (expires_at_ms);

-- One row per non-empty group of a FIFO queue: the instant the group can next deliver. The row is
-- also the group's lock: every change to a group's messages holds it (claims take it SKIP LOCKED).
CREATE TABLE fifo_groups (
    queue_id    BIGINT NOT NULL,
    group_id    TEXT COLLATE "C" NOT NULL,
    ready_at_ms BIGINT NOT NULL,
    PRIMARY KEY (queue_id, group_id)
);
CREATE INDEX fifo_groups_by_ready ON fifo_groups (queue_id, ready_at_ms, group_id);

-- FIFO deduplication keys seen within the window, naming the original message.
CREATE TABLE dedup (
    queue_id      BIGINT NOT NULL,
    dedup_key     TEXT COLLATE "C" NOT NULL,
    message_id    TEXT   NOT NULL,
    sequence      BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
);
CREATE INDEX dedup_by_expiry ON dedup (expires_at_ms);

-- ReceiveRequestAttemptId: what a claim handed out, so a retried receive returns the same messages.
CREATE TABLE receive_attempts (
    queue_id       BIGINT   NOT NULL,
    attempt_id     TEXT COLLATE "C" NOT NULL,
    row_ids        BIGINT[] NOT NULL,
    receive_counts INTEGER[] NOT NULL,
    visible_at_ms  BIGINT   NOT NULL,
    expires_at_ms  BIGINT   NOT NULL,
    PRIMARY KEY (queue_id, attempt_id)
);
CREATE INDEX receive_attempts_by_expiry ON receive_attempts (expires_at_ms);

CREATE TABLE move_tasks (
    seq                 BIGSERIAL PRIMARY KEY,
    task_handle         TEXT COLLATE "C" NOT NULL UNIQUE,
    source_queue_id     BIGINT  NOT NULL,
    source_arn          TEXT COLLATE "C" NOT NULL,
    destination_arn     TEXT,
    max_per_second      INTEGER,
    status              TEXT    NOT NULL,
    approximate_to_move BIGINT  NOT NULL,
    moved               BIGINT  NOT NULL,
    started_ms          BIGINT  NOT NULL,
    failure_reason      TEXT,
    lease_owner         TEXT,
    lease_until_ms      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX move_tasks_by_source ON move_tasks (source_arn, started_ms);
CREATE INDEX move_tasks_by_lease ON move_tasks (lease_until_ms) WHERE status IN ('RUNNING', 'CANCELLING');
-- At most one active task per source queue, enforced by the database across nodes.
CREATE UNIQUE INDEX move_tasks_one_active ON move_tasks (source_arn) WHERE status IN ('RUNNING', 'CANCELLING');

-- The first step of a FIFO claim, server-side so it costs one round trip and locks only the
-- groups it needs: take ready groups one at a time (ready order, SKIP LOCKED, none of p_seen),
-- return each one's first ten messages, and stop once the groups taken can fill p_n messages
-- (their consecutive visible prefixes, less expired rows and rows due for the dead-letter queue).
-- Locking all p_n groups up front would starve concurrent receivers of groups this claim never
-- uses. The caller decides exactly what to take from the rows (storage/postgres/_fifo.py).
CREATE FUNCTION fifo_lock_candidates(p_queue BIGINT, p_now BIGINT, p_n INTEGER, p_max_receives INTEGER, p_seen TEXT[])
RETURNS TABLE (group_id TEXT, id BIGINT, visible_at_ms BIGINT, expires_at_ms BIGINT, receive_count INTEGER)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    v_group TEXT;
    v_seen TEXT[] := p_seen;
    v_yield INTEGER := 0;
    v_open BOOLEAN;
    r RECORD;
BEGIN
    WHILE v_yield < p_n LOOP
        SELECT f.group_id INTO v_group FROM fifo_groups f
        WHERE f.queue_id = p_queue AND f.ready_at_ms <= p_now AND f.group_id <> ALL (v_seen)
        ORDER BY f.ready_at_ms, f.group_id LIMIT 1
        FOR UPDATE SKIP LOCKED;
        EXIT WHEN NOT FOUND;
        v_seen := v_seen || v_group;
        v_open := true;
        FOR r IN
            SELECT m.id, m.visible_at_ms, m.expires_at_ms, m.receive_count FROM messages m
            WHERE m.queue_id = p_queue AND m.group_id = v_group ORDER BY m.id LIMIT 10
        LOOP
            group_id := v_group;
            id := r.id;
            visible_at_ms := r.visible_at_ms;
            expires_at_ms := r.expires_at_ms;
            receive_count := r.receive_count;
            RETURN NEXT;
            IF v_open AND r.expires_at_ms > p_now THEN
                IF r.visible_at_ms > p_now THEN
                    v_open := false;
                ELSIF p_max_receives IS NULL OR r.receive_count < p_max_receives THEN
                    v_yield := v_yield + 1;
                END IF;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
