"""Which messages a FIFO claim takes from the groups it locked: a pure decision, tested alone.

The claim locks ready groups and reads each one's first ten messages (send order). From each
group it takes the consecutive prefix of visible messages, across groups in ready order, until
``max_messages``. A message that has already been received ``max_receives`` times goes to the
dead-letter queue instead, and the walk continues behind it. Expired messages are skipped (the
reaper deletes them). A group is ready when its head is visible, so later messages of it may be
in flight: the prefix ends at the first message that is in flight or delayed, and nothing behind
an unfinished message is delivered before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Candidate:
    """One of a locked group's first ten messages."""

    group_id: str
    row_id: int
    visible_at_ms: int
    expires_at_ms: int
    receive_count: int


@dataclass(slots=True)
class FifoPlan:
    claim_ids: list[int] = field(default_factory=list)  # in delivery order
    move_ids: list[int] = field(default_factory=list)
    touched_groups: list[str] = field(default_factory=list)  # groups whose messages change
    seen_groups: list[str] = field(default_factory=list)
    short: bool = False  # some group gave fewer messages because of moves or expiry: look further


def plan_fifo_claim(
    candidates: Iterable[Candidate], now_ms: int, max_messages: int, max_receives: int | None
) -> FifoPlan:
    """Walk candidates (grouped, groups in ready order, messages in send order)."""
    plan = FifoPlan()
    blocked: set[str] = set()
    touched: set[str] = set()
    for c in candidates:
        if not plan.seen_groups or plan.seen_groups[-1] != c.group_id:
            plan.seen_groups.append(c.group_id)
        if c.group_id in blocked or len(plan.claim_ids) >= max_messages:
            continue
        if c.expires_at_ms <= now_ms:
            plan.short = True
            continue
        if c.visible_at_ms > now_ms:
            blocked.add(c.group_id)  # in flight or delayed: the prefix ends here
            continue
        if max_receives is not None and c.receive_count >= max_receives:
            plan.move_ids.append(c.row_id)
            plan.short = True
        else:
            plan.claim_ids.append(c.row_id)
        if c.group_id not in touched:
            touched.add(c.group_id)
            plan.touched_groups.append(c.group_id)
    return plan
