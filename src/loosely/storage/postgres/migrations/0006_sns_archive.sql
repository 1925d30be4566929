-- The message archive of FIFO topics with an ArchivePolicy: a copy of each publication, written in
-- its transaction, kept until ``expires_ms`` (publication time + retention at that time).
CREATE TABLE sns_archive (
    id           BIGSERIAL PRIMARY KEY,
    topic_arn    TEXT   NOT NULL,
    sequence     BIGINT NOT NULL,  -- the publication's id: its SequenceNumber and publish order
    published_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    payload      TEXT   NOT NULL
);
-- A replay walks one topic in publish order from its cursor.
CREATE INDEX sns_archive_by_topic ON sns_archive (topic_arn, sequence);
-- A replay without a cursor yet finds where its window starts.
CREATE INDEX sns_archive_by_time ON sns_archive (topic_arn, published_ms, sequence);
-- Housekeeping removes the oldest expired rows first.
CREATE INDEX sns_archive_by_expiry ON sns_archive (expires_ms);
