-- Versioned documents (SNS topics, subscriptions, ...) and the publication outbox.

CREATE TABLE documents (
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    parent     TEXT,
    body       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
-- Listing one parent's children (a topic's subscriptions) in key order.
CREATE INDEX documents_by_parent ON documents (kind, parent, key) WHERE parent IS NOT NULL;

-- What a publish must still fan out. AUTOINCREMENT: ids are never reused and double as sequence
-- numbers. ``head`` is 1 for a row a claim may start from: one without an ordering key, or the
-- first (lowest id) of its ordering key; later rows of a key are reached only through their head,
-- so a key's publications go out in order, one batch at a time.
CREATE TABLE publications (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_arn      TEXT    NOT NULL,
    message_id     TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    ordering_key   TEXT,
    created_ms     INTEGER NOT NULL,
    head           INTEGER NOT NULL,
    lease_owner    TEXT,
    lease_until_ms INTEGER NOT NULL DEFAULT 0
);
-- Claims walk the heads oldest first, skipping leased ones (as many as are in flight, not the depth).
CREATE INDEX publications_claimable ON publications (id, lease_until_ms) WHERE head = 1;
CREATE INDEX publications_by_key ON publications (ordering_key, id) WHERE ordering_key IS NOT NULL;

-- FIFO topics' deduplication keys seen within the window, naming the original publication.
CREATE TABLE publication_dedup (
    topic_arn     TEXT    NOT NULL,
    dedup_key     TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    sequence      INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (topic_arn, dedup_key)
) WITHOUT ROWID;
CREATE INDEX publication_dedup_by_expiry ON publication_dedup (expires_at_ms);

-- Push deliveries still to make. ``due_ms`` is when a claim may take the row: its next attempt,
-- or while leased the end of the lease (so one index serves both, and an expired lease frees it).
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_arn TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    due_ms           INTEGER NOT NULL,
    created_ms       INTEGER NOT NULL,
    last_error       TEXT,
    lease_owner      TEXT
);
CREATE INDEX deliveries_by_due ON deliveries (due_ms, id);
