-- Versioned documents (SNS topics, subscriptions, ...) and the publication outbox.
-- Keys that are compared or sorted use COLLATE "C" (code point order, as SQLite and AWS sort).

CREATE TABLE documents (
    kind       TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    parent     TEXT COLLATE "C",
    body       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
-- Listing one parent's children (a topic's subscriptions) in key order.
CREATE INDEX documents_by_parent ON documents (kind, parent, key) WHERE parent IS NOT NULL;

-- What a publish must still fan out; ids double as sequence numbers. ``head`` marks a row a claim
-- may start from: one without an ordering key, or the first (lowest id) of its ordering key. Later
-- rows of a key are reached only through their head, so a key's publications go out in order, one
-- batch at a time. Adds and completions of a key hold the key's advisory lock (storage/postgres/
-- _outbox.py), so ids of a key are drawn in commit order and exactly one row of a key is its head.
CREATE TABLE publications (
    id             BIGSERIAL PRIMARY KEY,
    topic_arn      TEXT COLLATE "C" NOT NULL,
    message_id     TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    ordering_key   TEXT COLLATE "C",
    created_ms     BIGINT  NOT NULL,
    head           BOOLEAN NOT NULL,
    lease_owner    TEXT,
    lease_until_ms BIGINT  NOT NULL DEFAULT 0
);
-- Claims walk the heads oldest first, skipping leased ones (as many as are in flight, not the depth).
CREATE INDEX publications_claimable ON publications (id, lease_until_ms) WHERE head;
CREATE INDEX publications_by_key ON publications (ordering_key, id) WHERE ordering_key IS NOT NULL;

-- FIFO topics' deduplication keys seen within the window, naming the original publication.
CREATE TABLE publication_dedup (
    topic_arn     TEXT COLLATE "C" NOT NULL,
    dedup_key     TEXT COLLATE "C" NOT NULL,
    message_id    TEXT   NOT NULL,
    sequence      BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (topic_arn, dedup_key)
);
CREATE INDEX publication_dedup_by_expiry ON publication_dedup (expires_at_ms);

-- Push deliveries still to make. ``due_ms`` is when a claim may take the row: its next attempt,
-- or while leased the end of the lease (one index serves both, and an expired lease frees it).
CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    subscription_arn TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT  NOT NULL,
    due_ms           BIGINT  NOT NULL,
    created_ms       BIGINT  NOT NULL,
    last_error       TEXT,
    lease_owner      TEXT
);
CREATE INDEX deliveries_by_due ON deliveries (due_ms, id);
