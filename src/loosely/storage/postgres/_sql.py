"""Every SQL statement the PostgreSQL store runs, rendered once per store for its schema.

Statements take arrays (``unnest``) rather than one row per call, so a batch of ten is one
statement, and their text never varies with the batch size, so psycopg prepares each one on a
connection after a few uses. Names are schema-qualified (no reliance on ``search_path``, which
poolers in transaction mode do not keep).

Locking rules (see docs/deploy.md for the reasoning):

* A FIFO group's ``fifo_groups`` row is the group's lock. Every statement sequence that changes a
  group's messages holds it: claims take it ``FOR UPDATE SKIP LOCKED``; sends, deletes,
  visibility changes, purges, expiry and moves take it before touching messages, always in
  (queue_id, group_id) order so two writers cannot deadlock.
* Within a group, message ids are drawn while the group row is locked, so id order is commit
  order and SequenceNumbers increase in delivery order.
* Standard claims lock message rows ``FOR UPDATE SKIP LOCKED``: concurrent receivers on any node
  take disjoint rows, and a row is handed to at most one receiver per visibility window.
* Message counters (``queue_counts``, kept by triggers) are written by each backend into a row of
  its own, so they never make two transactions wait (migrations/0005_queue_counts.sql).
"""

from __future__ import annotations

import re
import zlib
from typing import Final

NOT_READY: Final = 9_223_372_036_854_775_807  # placeholder ready_at of a group row created mid-transaction

# Parameters are sent in binary: no text quoting of array elements on the client (measurably
# cheaper for the batch arrays), and integers travel as integers.
_BINARY_PARAMETER = re.compile(r"%(\(\w+\))?s")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,54}$")

MESSAGE_COLUMNS: Final = (
    "m.id, m.message_id, m.body, m.meta, m.sent_ms, m.receive_count, m.first_receive_ms, m.group_id,"
    " m.dead_letter_source_arn"
)
# A batch of new messages travels as one JSON array of objects with these keys (see
# _messages.batch_json): one text parameter costs the client a few microseconds, where seven
# binary arrays cost about ninety.
BATCH_COLUMNS: Final = "i text, b text, m text, s bigint, v bigint, g text, d text"
QUEUE_COLUMNS: Final = (
    "id, account_id, region, name, attributes, tags, created_ms, modified_ms, retention_ms, last_purge_ms"
)
TASK_COLUMNS: Final = (
    "task_handle, source_queue_id, source_arn, destination_arn, max_per_second, status, approximate_to_move,"
    " moved, started_ms, failure_reason, lease_owner, lease_until_ms"
)


def check_schema_name(schema: str) -> str:
    """Accept only plain lowercase identifiers, so names never need escaping and channel names fit."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema must match {_SCHEMA_NAME.pattern}, got {schema!r}")
    return schema


def channel_name(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a store: one per schema, payload = queue id."""
    return f"loosely_{schema}"


def wake_lock_key(schema: str) -> int:
    """The first half of the advisory lock keys that order sends against waiter registrations.

    The second half is the queue id; deployments in other schemas get other keys (a collision would
    only make registrations wait a little longer, never break the guarantee).
    """
    return zlib.crc32(f"loosely-wake:{schema}".encode()) - 2**31


def render(template: str, schema: str) -> str:
    """A statement template as run: shared parts filled in, ``{s}`` the quoted schema, parameters binary."""
    for part, fragment in _PARTS.items():
        template = template.replace(part, fragment)
    s = f'"{check_schema_name(schema)}"'
    text = template.replace("{s}", s).replace("{M}", MESSAGE_COLUMNS).replace("{BATCH_COLUMNS}", BATCH_COLUMNS)
    return _BINARY_PARAMETER.sub(r"%\1b", text)


class Sql:
    """The statements of one store, with ``{s}`` replaced by the quoted schema name.

    ``node`` is the store's node id: statements that wake waiters skip the node's own registrations
    (it wakes its own waiters after the commit), so they take it as the ``node`` parameter.
    """

    def __init__(self, schema: str, node: str) -> None:
        self.wake_key = wake_lock_key(schema)
        self.node = node
        for name, template in _TEMPLATES.items():
            setattr(self, name, render(template, schema))

    wake_key: int
    node: str
    # Declared for type checkers; values are set in __init__ from _TEMPLATES.
    insert_queue: str
    queue_by_key: str
    queue_by_id: str
    tombstone: str
    list_queues: str
    lock_queue: str
    update_queue: str
    restamp_expiry: str
    delete_queue: str
    delete_queue_rows: str
    mark_purge: str
    purge_messages: str
    lock_all_groups: str
    count_messages: str
    fold_counts: str
    delete_queue_counts: str
    queue_kind: str
    send_standard: str
    lock_group_pairs: str
    send_fifo: str
    dedup_lookup: str
    settle_new_groups: str
    recompute_groups: str
    notify: str
    notify_changed: str
    wake: str
    register_waiters: str
    unregister_waiters: str
    claim_standard: str
    claim_standard_many: str
    claim_standard_dlq: str
    in_flight_by_group: str
    fair_head: str
    fair_tail: str
    fair_lock: str
    next_visible_standard: str
    next_visible_fifo: str
    fifo_candidates: str
    claim_ids: str
    move_to_dlq: str
    attempt_lookup: str
    attempt_messages: str
    attempt_save: str
    attempt_restart: str
    lock_groups_of_rows: str
    delete_refs: str
    delete_standard: str
    round_standard: str
    change_visibility: str
    change_visibility_fifo: str
    expiry_candidates: str
    delete_expired: str
    lock_group_pairs_skip: str
    expire_dedup: str
    expire_attempts: str
    insert_task: str
    task_by_handle: str
    tasks_by_source: str
    update_task: str
    lease_task: str
    move_candidates_standard: str
    move_lock_fifo_groups: str
    move_candidates_fifo: str
    move_rows: str


# A move's destination: the given queue, or else the queue named by the message's source ARN
# (arn:aws:sqs:<region>:<account>:<name>).
_MOVE_DESTINATION = """(
    d.id = %(dest)s OR (%(dest)s::bigint IS NULL
        AND d.region = split_part(m.dead_letter_source_arn, ':', 4)
        AND d.account_id = split_part(m.dead_letter_source_arn, ':', 5)
        AND d.name = split_part(m.dead_letter_source_arn, ':', 6)))"""

# Parts shared by the standard send, delete and claim statements and by round_standard, which runs
# all three in one statement (placeholders in _TEMPLATES, filled in before {s} and {M}).
_SEND_CTES = """t AS (
            SELECT * FROM ROWS FROM (json_to_recordset(%(batch)s::json) AS (q bigint, {BATCH_COLUMNS}))
                 WITH ORDINALITY AS t(queue_id, message_id, body, meta, sent_ms, visible_at_ms, group_id, dedup_key,
                                      ord)),
        ins AS (
            INSERT INTO {s}.messages (queue_id, visible_at_ms, expires_at_ms, sent_ms, message_id, group_id, meta, body)
            SELECT t.queue_id, t.visible_at_ms, t.sent_ms + q.retention_ms, t.sent_ms, t.message_id, t.group_id,
                   t.meta, t.body
            FROM t JOIN {s}.queues q ON q.id = t.queue_id
            ORDER BY t.ord
            RETURNING id, message_id),
        w AS (
            SELECT {s}.wake_other_waiters(%(channel)s, q.id, %(wake_key)s::integer, %(node)s::text) AS woke
            FROM (SELECT id FROM {s}.queues WHERE id = ANY(%(queue_ids)s::bigint[]) ORDER BY id) q)"""
_DELETE_CTES = """r AS (
            SELECT * FROM unnest(%(del_queue_ids)s::bigint[], %(del_ids)s::bigint[], %(del_counts)s::int[])
            WITH ORDINALITY AS r(q, id, rc, ord)),
        d AS (
            DELETE FROM {s}.messages m USING r
            WHERE m.id = r.id AND m.queue_id = r.q AND m.receive_count = r.rc
            RETURNING m.id, m.receive_count)"""
_CLAIM_CTES = """req AS (
            SELECT k, n, until_ms, now_ms, sum(n) OVER (ORDER BY k) - n AS lo
            FROM unnest(%(ns)s::int[], %(untils)s::bigint[], %(nows)s::bigint[])
                 WITH ORDINALITY AS r(n, until_ms, now_ms, k)),
        c AS (
            SELECT id, visible_at_ms, expires_at_ms FROM {s}.messages
            WHERE queue_id = %(q)s AND visible_at_ms <= %(earliest)s AND expires_at_ms > %(latest)s
            ORDER BY visible_at_ms, id LIMIT %(total)s
            FOR UPDATE SKIP LOCKED),
        pick AS (
            SELECT c.id, c.expires_at_ms, req.k, req.until_ms, req.now_ms
            FROM (SELECT id, expires_at_ms, row_number() OVER (ORDER BY visible_at_ms, id) AS rn FROM c) c
            JOIN req ON c.rn > req.lo AND c.rn <= req.lo + req.n),
        u AS (
            UPDATE {s}.messages m SET visible_at_ms = pick.until_ms, receive_count = m.receive_count + 1,
                first_receive_ms = CASE WHEN m.first_receive_ms = 0 THEN pick.now_ms ELSE m.first_receive_ms END
            FROM pick WHERE m.id = pick.id
            RETURNING pick.k, {M})"""
# In a round, a row being deleted must not be claimed too (a statement must not change one row twice).
_CLAIM_CTES_EXCLUDING_DELETED = _CLAIM_CTES.replace(
    "expires_at_ms > %(latest)s\n",
    "expires_at_ms > %(latest)s\n              AND id <> ALL(%(del_ids)s::bigint[])\n",
    1,
)
# The extra row of a claim that handed out fewer rows than asked for: does the queue exist, and
# when does something next become visible?
_CLAIM_EMPTY = """EXISTS (SELECT 1 FROM {s}.queues WHERE id = %(q)s),
               LEAST(
                   (SELECT min(until_ms) FROM pick WHERE expires_at_ms > until_ms),
                   (SELECT visible_at_ms FROM {s}.messages
                    WHERE queue_id = %(q)s AND visible_at_ms > %(earliest)s AND expires_at_ms > visible_at_ms
                    ORDER BY visible_at_ms LIMIT 1))"""
_PARTS = {
    "{SEND_CTES}": _SEND_CTES,
    "{DELETE_CTES}": _DELETE_CTES,
    "{CLAIM_CTES_EXCLUDING_DELETED}": _CLAIM_CTES_EXCLUDING_DELETED,
    "{CLAIM_CTES}": _CLAIM_CTES,
    "{CLAIM_EMPTY}": _CLAIM_EMPTY,
}


_TEMPLATES: dict[str, str] = {
    # ---- queues ----
    "insert_queue": """
        INSERT INTO {s}.queues (account_id, region, name, fifo, attributes, tags, created_ms, modified_ms, retention_ms)
        VALUES (%(account)s, %(region)s, %(name)s, %(fifo)s, %(attributes)s::jsonb, %(tags)s::jsonb,
                %(now)s, %(now)s, %(retention)s)
        ON CONFLICT (account_id, region, name) DO NOTHING
        RETURNING id, account_id, region, name, attributes, tags, created_ms, modified_ms, retention_ms,
                  last_purge_ms""",
    "queue_by_key": f"SELECT {QUEUE_COLUMNS} FROM {{s}}.queues WHERE account_id = %s AND region = %s AND name = %s",
    "queue_by_id": f"SELECT {QUEUE_COLUMNS} FROM {{s}}.queues WHERE id = %s",
    "tombstone": "SELECT deleted_ms FROM {s}.queue_tombstones WHERE account_id = %s AND region = %s AND name = %s",
    "list_queues": f"""
        SELECT {QUEUE_COLUMNS} FROM {{s}}.queues
        WHERE account_id = %s AND region = %s AND starts_with(name, %s) ORDER BY name""",
    "lock_queue": "SELECT retention_ms FROM {s}.queues WHERE id = %s FOR UPDATE",
    "update_queue": f"""
        UPDATE {{s}}.queues SET
            attributes = COALESCE(%(attributes)s::jsonb, attributes),
            tags = COALESCE(%(tags)s::jsonb, tags),
            retention_ms = COALESCE(%(retention)s::bigint, retention_ms),
            modified_ms = %(now)s
        WHERE id = %(q)s RETURNING {QUEUE_COLUMNS}""",
    "restamp_expiry": "UPDATE {s}.messages SET expires_at_ms = sent_ms + %(retention)s WHERE queue_id = %(q)s",
    "delete_queue": """
        WITH q AS (DELETE FROM {s}.queues WHERE id = %(q)s RETURNING account_id, region, name)
        INSERT INTO {s}.queue_tombstones (account_id, region, name, deleted_ms)
        SELECT account_id, region, name, %(now)s FROM q
        ON CONFLICT (account_id, region, name) DO UPDATE SET deleted_ms = excluded.deleted_ms
        RETURNING 1""",
    "delete_queue_rows": """
        WITH a AS (DELETE FROM {s}.fifo_groups WHERE queue_id = %(q)s),
             b AS (DELETE FROM {s}.dedup WHERE queue_id = %(q)s),
             c AS (DELETE FROM {s}.receive_attempts WHERE queue_id = %(q)s)
        DELETE FROM {s}.messages WHERE queue_id = %(q)s""",
    "mark_purge": """
        UPDATE {s}.queues SET last_purge_ms = %(now)s
        WHERE id = %(q)s AND (last_purge_ms IS NULL OR last_purge_ms <= %(now)s - %(interval)s)
        RETURNING fifo""",
    "purge_messages": "DELETE FROM {s}.messages WHERE queue_id = %(q)s AND sent_ms <= %(now)s",
    "lock_all_groups": "SELECT group_id FROM {s}.fifo_groups WHERE queue_id = %s ORDER BY group_id FOR UPDATE",
    # The total from the counters (see migrations/0005_queue_counts.sql), less what is not visible
    # (read through messages_by_visibility) and expired rows not reaped yet (through messages_by_expiry;
    # "queue_id + 0" keeps the planner off the visibility index there). One statement, one snapshot;
    # the cost grows with the not-visible and expired messages, never with the visible backlog.
    "count_messages": """
        SELECT EXISTS (SELECT 1 FROM {s}.queues WHERE id = %(q)s),
               (SELECT coalesce(sum(c.messages), 0)::bigint FROM {s}.queue_counts c WHERE c.queue_id = %(q)s),
               (SELECT count(*) FROM {s}.messages x WHERE x.expires_at_ms <= %(now)s AND x.queue_id + 0 = %(q)s),
               count(*) FILTER (WHERE m.expires_at_ms > %(now)s AND m.receive_count > 0),
               count(*) FILTER (WHERE m.expires_at_ms > %(now)s AND m.receive_count = 0)
        FROM {s}.messages m WHERE m.queue_id = %(q)s AND m.visible_at_ms > %(now)s""",
    # Fold the counter rows of backends that have exited into the queue's total (shard 0).
    "fold_counts": """
        WITH gone AS (
            DELETE FROM {s}.queue_counts c
            WHERE (c.queue_id, c.shard) IN (
                SELECT d.queue_id, d.shard FROM {s}.queue_counts d
                WHERE d.shard <> 0 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = d.shard)
                ORDER BY d.queue_id, d.shard LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED)
            RETURNING c.queue_id, c.messages)
        INSERT INTO {s}.queue_counts AS c (queue_id, shard, messages)
        SELECT queue_id, 0, sum(messages) FROM gone GROUP BY queue_id ORDER BY queue_id
        ON CONFLICT (queue_id, shard) DO UPDATE SET messages = c.messages + excluded.messages""",
    "delete_queue_counts": "DELETE FROM {s}.queue_counts WHERE queue_id = %(q)s",
    "queue_kind": "SELECT fifo FROM {s}.queues WHERE id = %s",
    # ---- sends ----
    # One statement for the standard sends of many requests (group commit, see _coalesce): each
    # message names its queue, whose row supplies retention (and existence: messages of a deleted
    # queue are not stored, and only their requests fail). For each queue that some node has
    # receivers waiting on (another node: this one wakes its own after the commit), a NOTIFY is
    # queued for commit by the same statement (wake_other_waiters, see migrations/0002_wake_waiters.sql
    # and 0007_wake_other_nodes.sql; advisory locks in queue id order), so they wake once the
    # messages are durable. (w is read in the output list: a CTE nobody reads is never run.)
    "send_standard": """
        WITH {SEND_CTES}
        SELECT ins.id, ins.message_id, (SELECT count(*) FILTER (WHERE woke) FROM w) FROM ins""",
    # Lock (creating when missing) the rows of the given FIFO groups, in key order. New rows carry
    # NOT_READY until settle_new_groups sets them, before the transaction commits.
    "lock_group_pairs": """
        INSERT INTO {s}.fifo_groups (queue_id, group_id, ready_at_ms)
        SELECT t.queue_id, t.group_id, 9223372036854775807
        FROM unnest(%(queue_ids)s::bigint[], %(group_ids)s::text[]) AS t(queue_id, group_id)
        WHERE EXISTS (SELECT 1 FROM {s}.queues q WHERE q.id = t.queue_id)
        ORDER BY t.queue_id, t.group_id
        ON CONFLICT (queue_id, group_id) DO UPDATE SET ready_at_ms = {s}.fifo_groups.ready_at_ms""",
    # FIFO send, run after lock_group_pairs: ids are drawn now, while the groups are locked. A
    # dedup key is claimed by inserting it (or taking over an expired row); a message is stored
    # only if its key was claimed here. The final SELECT still sees the rows as they were before
    # the statement, so for an unclaimed key it names the original message.
    "send_fifo": """
        WITH q AS (SELECT retention_ms FROM {s}.queues WHERE id = %(q)s),
        t AS (
            SELECT u.*, nextval('{s}.messages_id_seq') AS id
            FROM ROWS FROM (json_to_recordset(%(batch)s::json) AS ({BATCH_COLUMNS}))
                 WITH ORDINALITY AS u(message_id, body, meta, sent_ms, visible_at_ms, group_id, dedup_key, ord)
            WHERE EXISTS (SELECT 1 FROM q)
            ORDER BY u.ord),
        fresh AS (
            INSERT INTO {s}.dedup AS d (queue_id, dedup_key, message_id, sequence, expires_at_ms)
            SELECT %(q)s, t.dedup_key, t.message_id, t.id, %(now)s + %(window)s FROM t WHERE t.dedup_key IS NOT NULL
            ON CONFLICT (queue_id, dedup_key) DO UPDATE
                SET message_id = excluded.message_id, sequence = excluded.sequence,
                    expires_at_ms = excluded.expires_at_ms
                WHERE d.expires_at_ms <= %(now)s
            RETURNING dedup_key),
        ins AS (
            INSERT INTO {s}.messages (id, queue_id, visible_at_ms, expires_at_ms, sent_ms, message_id, group_id,
                                      meta, body)
            SELECT t.id, %(q)s, t.visible_at_ms, t.sent_ms + q.retention_ms, t.sent_ms, t.message_id, t.group_id,
                   t.meta, t.body
            FROM t CROSS JOIN q
            WHERE t.dedup_key IS NULL OR t.dedup_key IN (SELECT dedup_key FROM fresh)
            ORDER BY t.ord
            RETURNING id)
        SELECT t.ord, t.id, t.message_id, t.id IN (SELECT id FROM ins), d.message_id, d.sequence, d.expires_at_ms
        FROM t LEFT JOIN {s}.dedup d ON d.queue_id = %(q)s AND d.dedup_key = t.dedup_key
        ORDER BY t.ord""",
    "dedup_lookup": """
        SELECT dedup_key, message_id, sequence FROM {s}.dedup
        WHERE queue_id = %(q)s AND dedup_key = ANY(%(keys)s::text[]) AND expires_at_ms > %(now)s""",
    # Give the rows created by lock_group_pairs their real ready_at (their head's visibility), or
    # drop them when no message was stored in the group after all (every send a duplicate).
    "settle_new_groups": """
        WITH g AS (
            SELECT f.queue_id, f.group_id,
                   (SELECT m.visible_at_ms FROM {s}.messages m
                    WHERE m.queue_id = f.queue_id AND m.group_id = f.group_id ORDER BY m.id LIMIT 1) AS head_ms
            FROM {s}.fifo_groups f
            JOIN unnest(%(queue_ids)s::bigint[], %(group_ids)s::text[]) AS t(queue_id, group_id)
              ON f.queue_id = t.queue_id AND f.group_id = t.group_id
            WHERE f.ready_at_ms = 9223372036854775807),
        gone AS (
            DELETE FROM {s}.fifo_groups f USING g
            WHERE f.queue_id = g.queue_id AND f.group_id = g.group_id AND g.head_ms IS NULL)
        UPDATE {s}.fifo_groups f SET ready_at_ms = g.head_ms FROM g
        WHERE f.queue_id = g.queue_id AND f.group_id = g.group_id AND g.head_ms IS NOT NULL""",
    # A group is ready when its head (first message by id) is visible, even while later messages of
    # it are in flight (as on AWS); claims take only the consecutive visible prefix from the head.
    "recompute_groups": """
        WITH g AS (
            SELECT DISTINCT * FROM unnest(%(queue_ids)s::bigint[], %(group_ids)s::text[]) AS t(queue_id, group_id)),
        r AS (
            SELECT g.queue_id, g.group_id,
                   (SELECT m.visible_at_ms FROM {s}.messages m
                    WHERE m.queue_id = g.queue_id AND m.group_id = g.group_id ORDER BY m.id LIMIT 1) AS head_ms
            FROM g),
        gone AS (
            DELETE FROM {s}.fifo_groups f USING r
            WHERE f.queue_id = r.queue_id AND f.group_id = r.group_id AND r.head_ms IS NULL)
        INSERT INTO {s}.fifo_groups (queue_id, group_id, ready_at_ms)
        SELECT r.queue_id, r.group_id, r.head_ms FROM r WHERE r.head_ms IS NOT NULL
        ON CONFLICT (queue_id, group_id) DO UPDATE SET ready_at_ms = excluded.ready_at_ms""",
    # Wake the nodes waiting on these queues (dead-letter moves, redrives): like a send, only when some
    # other node has registered waiters (migrations/0007_wake_other_nodes.sql), advisory locks in
    # queue id order. The writing node wakes its own waiters after the commit.
    "notify": """
        SELECT {s}.wake_other_waiters(%(channel)s, t.q, %(wake_key)s::integer, %(node)s::text)
        FROM (SELECT DISTINCT q FROM unnest(%(queue_ids)s::bigint[]) AS q ORDER BY q) AS t""",
    # The queue row changed: every node drops its cached record of it (and wakes its waiters).
    "notify_changed": "SELECT pg_notify(%(channel)s, 'c' || %(q)s::bigint::text)",
    # Sends notify only when another node waits on the queue; see migrations/0007_wake_other_nodes.sql.
    "wake": "SELECT {s}.wake_other_waiters(%(channel)s, %(q)s::bigint, %(wake_key)s::integer, %(node)s::text)",
    "register_waiters": """
        SELECT {s}.register_waiters(%(node)s, %(queue_ids)s::bigint[], %(wake_key)s::integer, %(ttl)s::bigint)""",
    "unregister_waiters": "DELETE FROM {s}.waiters WHERE node = %(node)s",
    # ---- claims ----
    "claim_standard": """
        WITH c AS (
            SELECT id FROM {s}.messages
            WHERE queue_id = %(q)s AND visible_at_ms <= %(now)s AND expires_at_ms > %(now)s
            ORDER BY visible_at_ms, id LIMIT %(n)s
            FOR UPDATE SKIP LOCKED)
        UPDATE {s}.messages m SET visible_at_ms = %(until)s, receive_count = m.receive_count + 1,
            first_receive_ms = CASE WHEN m.first_receive_ms = 0 THEN %(now)s ELSE m.first_receive_ms END
        FROM c WHERE m.id = c.id
        RETURNING {M}""",
    # The claims of many concurrent receives on one standard queue (group commit, see _coalesce): the
    # first sum(n) visible rows in claim order, SKIP LOCKED, dealt out in request order (request k
    # takes rows lo_k+1 .. lo_k+n_k), each with its request's visibility deadline and receive instant.
    # Visibility is judged at the earliest request's instant and expiry at the latest one's, so every
    # row is one each request could have claimed on its own. When fewer rows than asked for were
    # found, one more row (k = 0) says whether the queue exists and when something next becomes
    # visible (the rows claimed here count with their new deadline), so receives left empty need no
    # second statement.
    "claim_standard_many": """
        WITH {CLAIM_CTES}
        SELECT u.*, NULL::boolean, NULL::bigint FROM u
        UNION ALL
        SELECT 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               {CLAIM_EMPTY}
        WHERE (SELECT count(*) FROM pick) < %(total)s""",
    # The claim with a dead-letter queue: of the first `scan` visible candidates, those already
    # received max_receive_count times move to the DLQ in the same statement and the first n others
    # are claimed (the rest are unlocked at commit). Always one row, carrying the count moved, plus
    # one row per claimed message (NULL columns when none).
    # A claim's later rounds (after it moved dead letters) pass over what its earlier rounds took
    # (``taken``): taken with a visibility timeout of 0, a message is visible again at once.
    "claim_standard_dlq": """
        WITH c AS (
            SELECT id, receive_count, visible_at_ms FROM {s}.messages
            WHERE queue_id = %(q)s AND visible_at_ms <= %(now)s AND expires_at_ms > %(now)s
              AND id <> ALL(%(taken)s::bigint[])
            ORDER BY visible_at_ms, id LIMIT %(scan)s
            FOR UPDATE SKIP LOCKED),
        dlq AS (SELECT id, retention_ms FROM {s}.queues WHERE id = %(dlq)s),
        pick AS (
            SELECT c.id FROM c
            WHERE c.receive_count < %(max_receives)s OR NOT EXISTS (SELECT 1 FROM dlq)
            ORDER BY c.visible_at_ms, c.id LIMIT %(n)s),
        mv AS (
            DELETE FROM {s}.messages m USING c, dlq WHERE m.id = c.id AND c.receive_count >= %(max_receives)s
            RETURNING m.*),
        ins AS (
            INSERT INTO {s}.messages (queue_id, visible_at_ms, expires_at_ms, sent_ms, message_id, group_id,
                                      dead_letter_source_arn, meta, body, receive_count, first_receive_ms)
            SELECT dlq.id, %(now)s, mv.sent_ms + dlq.retention_ms, mv.sent_ms, mv.message_id, mv.group_id,
                   %(source_arn)s, mv.meta, mv.body, mv.receive_count + 1,
                   CASE WHEN mv.first_receive_ms = 0 THEN %(now)s ELSE mv.first_receive_ms END
            FROM mv CROSS JOIN dlq ORDER BY mv.id
            RETURNING id),
        m AS (
            UPDATE {s}.messages m SET visible_at_ms = %(until)s, receive_count = m.receive_count + 1,
                first_receive_ms = CASE WHEN m.first_receive_ms = 0 THEN %(now)s ELSE m.first_receive_ms END
            FROM pick WHERE m.id = pick.id
            RETURNING m.*)
        SELECT (SELECT count(*) FROM ins), {M} FROM (SELECT 1) one LEFT JOIN m ON true""",
    # Fair queues (storage/_fair.py): in flight per group, through messages_by_visibility (O(in flight)).
    "in_flight_by_group": """
        SELECT group_id, count(*) FROM {s}.messages
        WHERE queue_id = %(q)s AND visible_at_ms > %(now)s AND receive_count > 0 AND expires_at_ms > %(now)s
        GROUP BY group_id""",
    # A fair claim's windows: the oldest and the newest visible rows, without bodies and without
    # locks (locking a window would leave concurrent receives nothing to take, SKIP LOCKED).
    "fair_head": """
        SELECT id, group_id, visible_at_ms FROM {s}.messages
        WHERE queue_id = %(q)s AND visible_at_ms <= %(now)s AND expires_at_ms > %(now)s
        ORDER BY visible_at_ms, id LIMIT %(look)s""",
    "fair_tail": """
        SELECT id, group_id, visible_at_ms FROM {s}.messages
        WHERE queue_id = %(q)s AND visible_at_ms <= %(now)s AND expires_at_ms > %(now)s
        ORDER BY visible_at_ms DESC, id DESC LIMIT %(look)s""",
    # Then the first `n` of the chosen rows, in the fair order, that no concurrent claim holds, locked
    # and checked again (a row claimed by a transaction that committed since the windows were read
    # is not visible any more, so it is left out: each row is handed out once). The last column says
    # whether the dead-letter queue (if any) still exists: without it, dead letters are claimed as
    # any other message, as the plain claim does.
    "fair_lock": """
        SELECT id, receive_count, EXISTS (SELECT 1 FROM {s}.queues WHERE id = %(dlq)s) FROM {s}.messages
        WHERE id = ANY(%(ids)s::bigint[]) AND queue_id = %(q)s AND visible_at_ms <= %(now)s
          AND expires_at_ms > %(now)s
        ORDER BY array_position(%(ids)s::bigint[], id) LIMIT %(n)s
        FOR UPDATE SKIP LOCKED""",
    # After an empty claim: does the queue exist, and when does something next become visible?
    "next_visible_standard": """
        SELECT EXISTS (SELECT 1 FROM {s}.queues WHERE id = %(q)s), (
            SELECT visible_at_ms FROM {s}.messages
            WHERE queue_id = %(q)s AND visible_at_ms > %(now)s AND expires_at_ms > visible_at_ms
            ORDER BY visible_at_ms LIMIT 1)""",
    "next_visible_fifo": """
        SELECT EXISTS (SELECT 1 FROM {s}.queues WHERE id = %(q)s), (
            SELECT ready_at_ms FROM {s}.fifo_groups WHERE queue_id = %(q)s AND ready_at_ms > %(now)s
            ORDER BY ready_at_ms LIMIT 1)""",
    # Lock ready groups (only as many as can fill n) and read each one's first ten messages; the
    # store picks each group's consecutive visible prefix from these (see migrations/0001_init.sql).
    "fifo_candidates": """
        SELECT group_id, id, visible_at_ms, expires_at_ms, receive_count
        FROM {s}.fifo_lock_candidates(%(q)s, %(now)s, %(n)s, %(max_receives)s, %(seen)s::text[])""",
    "claim_ids": """
        UPDATE {s}.messages m SET visible_at_ms = %(until)s, receive_count = m.receive_count + 1,
            first_receive_ms = CASE WHEN m.first_receive_ms = 0 THEN %(now)s ELSE m.first_receive_ms END
        WHERE m.id = ANY(%(ids)s::bigint[])
        RETURNING {M}""",
    # Move rows (already chosen under their group locks) to the dead-letter queue. A FIFO DLQ gets a
    # group row when the group was empty there; an existing row is unaffected by an appended message.
    # Retention counts from the original send, except in a FIFO DLQ, where AWS restarts it at the move.
    # The receive that moves a message counts, and the DLQ goes on counting from there (as in SQS).
    "move_to_dlq": """
        WITH dlq AS (SELECT id, retention_ms, fifo FROM {s}.queues WHERE id = %(dlq)s),
        mv AS (DELETE FROM {s}.messages m USING dlq WHERE m.id = ANY(%(ids)s::bigint[]) RETURNING m.*),
        ins AS (
            INSERT INTO {s}.messages (queue_id, visible_at_ms, expires_at_ms, sent_ms, message_id, group_id,
                                      dead_letter_source_arn, meta, body, receive_count, first_receive_ms)
            SELECT dlq.id, %(now)s, CASE WHEN dlq.fifo THEN %(now)s ELSE mv.sent_ms END + dlq.retention_ms,
                   mv.sent_ms, mv.message_id, mv.group_id, %(source_arn)s, mv.meta, mv.body, mv.receive_count + 1,
                   CASE WHEN mv.first_receive_ms = 0 THEN %(now)s ELSE mv.first_receive_ms END
            FROM mv CROSS JOIN dlq ORDER BY mv.id
            RETURNING group_id),
        grp AS (
            INSERT INTO {s}.fifo_groups (queue_id, group_id, ready_at_ms)
            SELECT DISTINCT dlq.id, ins.group_id, %(now)s::bigint FROM ins CROSS JOIN dlq
            WHERE dlq.fifo AND ins.group_id IS NOT NULL
            ON CONFLICT (queue_id, group_id) DO NOTHING)
        SELECT (SELECT count(*) FROM ins),
               {s}.wake_other_waiters(%(channel)s, %(dlq)s::bigint, %(wake_key)s::integer, %(node)s::text)""",
    "attempt_lookup": """
        SELECT row_ids, receive_counts, visible_at_ms FROM {s}.receive_attempts
        WHERE queue_id = %(q)s AND attempt_id = %(attempt)s AND expires_at_ms > %(now)s
        FOR UPDATE""",
    "attempt_messages": """
        SELECT {M}, m.visible_at_ms, m.visibility_changed_in FROM {s}.messages m
        WHERE m.queue_id = %(q)s AND m.id = ANY(%(ids)s::bigint[]) ORDER BY m.id
        FOR UPDATE""",
    "attempt_restart": """
        WITH u AS (UPDATE {s}.messages SET visible_at_ms = %(until)s WHERE id = ANY(%(ids)s::bigint[]))
        UPDATE {s}.receive_attempts SET visible_at_ms = %(until)s
        WHERE queue_id = %(q)s AND attempt_id = %(attempt)s""",
    # Receive counts are read back from the rows just claimed (same transaction, or just committed).
    "attempt_save": """
        INSERT INTO {s}.receive_attempts (queue_id, attempt_id, row_ids, receive_counts, visible_at_ms, expires_at_ms)
        SELECT %(q)s, %(attempt)s, %(ids)s::bigint[],
               ARRAY(SELECT m.receive_count FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
                     JOIN {s}.messages m ON m.id = u.id ORDER BY u.ord),
               %(until)s, %(expires)s
        ON CONFLICT (queue_id, attempt_id) DO UPDATE SET row_ids = excluded.row_ids,
            receive_counts = excluded.receive_counts, visible_at_ms = excluded.visible_at_ms,
            expires_at_ms = excluded.expires_at_ms""",
    # ---- deletes and visibility ----
    "lock_groups_of_rows": """
        SELECT f.group_id FROM {s}.fifo_groups f
        WHERE f.queue_id = %(q)s AND f.group_id IN (
            SELECT m.group_id FROM {s}.messages m WHERE m.queue_id = %(q)s AND m.id = ANY(%(ids)s::bigint[]))
        ORDER BY f.group_id FOR UPDATE""",
    "delete_refs": """
        WITH r AS (SELECT * FROM unnest(%(ids)s::bigint[], %(counts)s::int[]) WITH ORDINALITY AS r(id, rc, ord)),
        d AS (
            DELETE FROM {s}.messages m USING r
            WHERE m.id = r.id AND m.queue_id = %(q)s AND m.receive_count = r.rc
                AND (%(now)s::bigint IS NULL OR m.visible_at_ms > %(now)s::bigint)
            RETURNING m.id, m.receive_count)
        SELECT r.ord, (r.id, r.rc) IN (SELECT id, receive_count FROM d), m.id IS NOT NULL, m.group_id
        FROM r LEFT JOIN {s}.messages m ON m.id = r.id AND m.queue_id = %(q)s
        ORDER BY r.ord""",
    # The standard-queue deletes of many requests (group commit, see _coalesce): each ref names its
    # queue. One row per ref, in order: deleted now, and whether the message existed.
    "delete_standard": """
        WITH {DELETE_CTES}
        SELECT r.ord, (r.id, r.rc) IN (SELECT id, receive_count FROM d), m.id IS NOT NULL
        FROM r LEFT JOIN {s}.messages m ON m.id = r.id AND m.queue_id = r.q
        ORDER BY r.ord""",
    # One round of a node's standard-queue writes (see _rounds.Rounds): the sends of
    # send_standard, the deletes of delete_standard and the claims of claim_standard_many on one
    # queue, in one statement and one commit, where they would take three. The three parts touch
    # disjoint rows: new rows are invisible to the claim (one snapshot), and a row being deleted is
    # kept out of the claim's candidates (a statement must not change one row twice). Rows come
    # back tagged by part (1 sent, 2 deleted, 3 claimed) in the columns of the part's own statement:
    #   1: NULL, id, message_id, ..., notified (col 13)
    #   2: ord, ..., deleted (col 12), ..., existed (col 14)
    #   3: k, {M}, exists (col 12), next visible (col 13), as in claim_standard_many.
    "round_standard": """
        WITH {SEND_CTES},
        {DELETE_CTES},
        {CLAIM_CTES_EXCLUDING_DELETED}
        SELECT 1, NULL::bigint, ins.id, ins.message_id, NULL::text, NULL::text, NULL::bigint, NULL::integer,
               NULL::bigint, NULL::text, NULL::text, NULL::boolean, (SELECT count(*) FILTER (WHERE woke) FROM w),
               NULL::boolean
        FROM ins
        UNION ALL
        SELECT 2, r.ord, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               (r.id, r.rc) IN (SELECT id, receive_count FROM d), NULL, m.id IS NOT NULL
        FROM r LEFT JOIN {s}.messages m ON m.id = r.id AND m.queue_id = r.q
        UNION ALL
        SELECT 3, u.*, NULL, NULL, NULL FROM u
        UNION ALL
        SELECT 3, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               {CLAIM_EMPTY},
               NULL
        WHERE %(total)s > 0 AND (SELECT count(*) FROM pick) < %(total)s""",
    # A current receipt changes the visibility even when its timeout ran out (as on AWS); an
    # outdated one (the message was received again) changes nothing. Only a change that makes a
    # message visible now wakes waiters, and only when some other node has registered as waiting on the
    # queue (wake_other_waiters; the writing node wakes its own after the commit): extending visibility
    # (heartbeats) must not cost every node a wake-up.
    "change_visibility": """
        WITH r AS (
            SELECT * FROM unnest(%(ids)s::bigint[], %(counts)s::int[], %(visible)s::bigint[])
            WITH ORDINALITY AS r(id, rc, visible_at_ms, ord)),
        u AS (
            UPDATE {s}.messages m SET visible_at_ms = r.visible_at_ms FROM r
            WHERE m.id = r.id AND m.queue_id = %(q)s AND m.receive_count = r.rc AND m.receive_count > 0
            RETURNING m.id, m.visible_at_ms),
        n AS (
            SELECT {s}.wake_other_waiters(%(channel)s, %(q)s::bigint, %(wake_key)s::integer, %(node)s::text)
            WHERE EXISTS (SELECT 1 FROM u WHERE u.visible_at_ms <= %(now)s))
        SELECT r.ord, r.id IN (SELECT id FROM u), m.id IS NOT NULL, (SELECT count(*) FROM n)
        FROM r LEFT JOIN {s}.messages m ON m.id = r.id AND m.queue_id = %(q)s
        ORDER BY r.ord""",
    # ---- expiry ----
    "expiry_candidates": """
        SELECT m.id, m.queue_id, m.group_id, COALESCE(q.fifo, false) FROM {s}.messages m
        LEFT JOIN {s}.queues q ON q.id = m.queue_id
        WHERE m.expires_at_ms <= %(now)s ORDER BY m.expires_at_ms LIMIT %(limit)s""",
    "delete_expired": "DELETE FROM {s}.messages WHERE id = ANY(%(ids)s::bigint[]) AND expires_at_ms <= %(now)s",
    "lock_group_pairs_skip": """
        SELECT f.queue_id, f.group_id FROM {s}.fifo_groups f
        JOIN unnest(%(queue_ids)s::bigint[], %(group_ids)s::text[]) AS t(queue_id, group_id)
          ON f.queue_id = t.queue_id AND f.group_id = t.group_id
        ORDER BY f.queue_id, f.group_id FOR UPDATE OF f SKIP LOCKED""",
    "expire_dedup": """
        DELETE FROM {s}.dedup WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM {s}.dedup WHERE expires_at_ms <= %(now)s LIMIT %(limit)s))""",
    "expire_attempts": """
        DELETE FROM {s}.receive_attempts WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM {s}.receive_attempts WHERE expires_at_ms <= %(now)s LIMIT %(limit)s))""",
    # ---- message move tasks ----
    "insert_task": f"""
        INSERT INTO {{s}}.move_tasks ({TASK_COLUMNS})
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
    "task_by_handle": f"SELECT {TASK_COLUMNS} FROM {{s}}.move_tasks WHERE task_handle = %s",
    "tasks_by_source": f"""
        SELECT {TASK_COLUMNS} FROM {{s}}.move_tasks WHERE source_arn = %s
        ORDER BY started_ms DESC, seq DESC LIMIT %s""",
    "update_task": """
        UPDATE {s}.move_tasks SET status = %(status)s, approximate_to_move = %(to_move)s, moved = %(moved)s,
            failure_reason = %(reason)s, lease_owner = %(owner)s, lease_until_ms = %(until)s
        WHERE task_handle = %(handle)s""",
    "lease_task": f"""
        UPDATE {{s}}.move_tasks SET lease_owner = %(owner)s, lease_until_ms = %(until)s
        WHERE seq = (
            SELECT seq FROM {{s}}.move_tasks
            WHERE status IN ('RUNNING', 'CANCELLING') AND lease_until_ms <= %(now)s
            ORDER BY lease_until_ms, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING {TASK_COLUMNS}""",
    # Candidates of a move, each with its destination (id, fifo): the given queue, or the queue its
    # dead_letter_source_arn names (messages whose source queue is gone are passed over).
    "move_candidates_standard": f"""
        SELECT m.id, m.group_id, d.id, d.fifo FROM {{s}}.messages m JOIN {{s}}.queues d ON {_MOVE_DESTINATION}
        WHERE m.queue_id = %(q)s AND m.visible_at_ms <= %(now)s AND m.expires_at_ms > %(now)s
        ORDER BY m.visible_at_ms, m.id LIMIT %(limit)s
        FOR UPDATE OF m SKIP LOCKED""",
    # A FIFO move first locks ready groups (head visible) without a message in flight, in ready
    # order; busy groups are found through the visibility index (cost: the not-visible messages).
    "move_lock_fifo_groups": """
        WITH busy AS (
            SELECT DISTINCT m.group_id FROM {s}.messages m
            WHERE m.queue_id = %(q)s AND m.visible_at_ms > %(now)s AND m.receive_count > 0
              AND m.expires_at_ms > %(now)s AND m.group_id IS NOT NULL)
        SELECT f.group_id FROM {s}.fifo_groups f
        WHERE f.queue_id = %(q)s AND f.ready_at_ms <= %(now)s AND f.group_id NOT IN (SELECT group_id FROM busy)
        ORDER BY f.ready_at_ms, f.group_id LIMIT %(limit)s
        FOR UPDATE OF f SKIP LOCKED""",
    # Then, under those locks (a fresh snapshot: nothing changes these groups now), each group's
    # first messages in send order with what the store needs to cut its movable prefix: whether
    # the group is busy after all, and each message's visibility and destination (id, fifo).
    "move_candidates_fifo": f"""
        WITH g AS (SELECT * FROM unnest(%(groups)s::text[]) WITH ORDINALITY AS g(group_id, ord)),
        busy AS (
            SELECT DISTINCT m.group_id FROM {{s}}.messages m
            WHERE m.queue_id = %(q)s AND m.visible_at_ms > %(now)s AND m.receive_count > 0
              AND m.expires_at_ms > %(now)s AND m.group_id = ANY(%(groups)s::text[]))
        SELECT c.* FROM g CROSS JOIN LATERAL (
            SELECT m.id, m.group_id, d.id AS dest_id, d.fifo, m.visible_at_ms <= %(now)s AS visible,
                   m.expires_at_ms > %(now)s AS alive, g.group_id IN (SELECT group_id FROM busy) AS busy
            FROM {{s}}.messages m LEFT JOIN {{s}}.queues d ON {_MOVE_DESTINATION}
            WHERE m.queue_id = %(q)s AND m.group_id = g.group_id
            ORDER BY m.id LIMIT %(limit)s) c
        ORDER BY (SELECT g2.ord FROM g g2 WHERE g2.group_id = c.group_id), c.id""",
    # Moved messages keep id, body, meta and sent time; they start again unreceived and visible.
    "move_rows": """
        WITH t AS (SELECT * FROM unnest(%(ids)s::bigint[], %(dests)s::bigint[]) AS t(id, dest)),
        mv AS (
            DELETE FROM {s}.messages m USING t JOIN {s}.queues q ON q.id = t.dest
            WHERE m.id = t.id RETURNING m.*, t.dest, q.retention_ms AS dest_retention_ms),
        ins AS (
            INSERT INTO {s}.messages (queue_id, visible_at_ms, expires_at_ms, sent_ms, message_id, group_id, meta, body)
            SELECT mv.dest, %(now)s, mv.sent_ms + mv.dest_retention_ms, mv.sent_ms, mv.message_id, mv.group_id,
                   mv.meta, mv.body
            FROM mv ORDER BY mv.id
            RETURNING queue_id)
        SELECT queue_id, count(*) FROM ins GROUP BY queue_id""",
}
# On a FIFO queue a visibility change also records the receive it was made in, so that a
# ReceiveRequestAttemptId retry claims anew even when a later change set the deadline back
# (migrations/0008_visibility_changed_in.sql). The same single statement; standard queues have no
# receive attempts and keep the plain one.
_TEMPLATES["change_visibility_fifo"] = _TEMPLATES["change_visibility"].replace(
    "SET visible_at_ms = r.visible_at_ms FROM r",
    "SET visible_at_ms = r.visible_at_ms, visibility_changed_in = m.receive_count FROM r",
)
if _TEMPLATES["change_visibility_fifo"] == _TEMPLATES["change_visibility"]:
    raise RuntimeError("change_visibility no longer has the SET clause change_visibility_fifo extends")
