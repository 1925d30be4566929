"""The IAM statement AddPermission writes, the same for SQS queues and SNS topics.

Both services turn AddPermission into an ``Allow`` statement whose ``Sid`` is the label, whose
principals are the root of each account and whose actions carry the service's prefix (``SQS:`` or
``SNS:``). Like AWS, a lone principal or action is written as a string and several as a list, so
a policy read back through GetQueueAttributes/GetTopicAttributes matches what AWS would show.
"""

from __future__ import annotations

from collections.abc import Sequence


def allow_statement(
    sid: str, action_prefix: str, account_ids: Sequence[str], actions: Sequence[str], resource: str
) -> dict[str, object]:
    """The statement letting ``account_ids`` perform ``actions`` (named without prefix) on ``resource``."""
    principals = [f"arn:aws:iam::{account}:root" for account in account_ids]
    prefixed = [f"{action_prefix}:{action}" for action in actions]
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": _one_or_many(principals)},
        "Action": _one_or_many(prefixed),
        "Resource": resource,
    }


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values
