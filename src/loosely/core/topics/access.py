"""Topic access policies: AddPermission/RemovePermission edits and the cross-account check.

The topic owner may always act on its topic. Another account may act when a statement of the
topic's Policy allows it: ``Effect`` Allow, an ``Action`` covering ``SNS:<action>`` and a
``Principal`` naming that account (or everyone) with no condition it fails. Conditions other than
``AWS:SourceOwner`` / ``AWS:SourceAccount`` equality are not evaluated and make a statement not
apply, so an unknown condition never grants access.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from loosely.core.policies import allow_statement
from loosely.core.topics.errors import AuthorizationError
from loosely.core.topics.models import Topic, TopicKey
from loosely.core.topics.validation import PERMISSION_ACTIONS, compact_json, invalid

_ACCOUNT_KEYS = frozenset({"aws:sourceowner", "aws:sourceaccount"})


def add_statement(policy: str, topic_arn: str, label: str, accounts: Sequence[str], actions: Sequence[str]) -> str:
    """The policy with a statement ``label`` that lets ``accounts`` perform ``actions``."""
    document = _load(policy)
    statements = document.setdefault("Statement", [])
    if any(isinstance(s, dict) and s.get("Sid") == label for s in statements):
        raise invalid("Statement already exists")
    if not actions or any(action not in PERMISSION_ACTIONS for action in actions):
        raise invalid("Policy statement action out of service scope!")
    statements.append(allow_statement(label, "SNS", accounts, actions, topic_arn))
    return compact_json(document)


def remove_statement(policy: str, label: str) -> str | None:
    """The policy without statement ``label``; None when there was no such statement."""
    document = _load(policy)
    statements = document.get("Statement", [])
    kept = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == label)]
    if len(kept) == len(statements):
        return None
    document["Statement"] = kept
    return compact_json(document)


def authorize(policy: str | None, owner: str, caller: str, action: str, topic_arn: str) -> None:
    """Raise AuthorizationError unless ``caller`` may perform ``action`` (e.g. ``Publish``) on the topic."""
    if caller == owner:
        return
    try:
        document = json.loads(policy or "{}")
    except ValueError:
        document = {}
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    if any(_allows(s, caller, f"sns:{action.lower()}") for s in statements if isinstance(s, dict)):
        return
    raise AuthorizationError(
        f"User: arn:aws:iam::{caller}:root is not authorized to perform: SNS:{action} on resource: {topic_arn}"
    )


def authorize_topic(topic: Topic, caller: str, action: str) -> None:
    """`authorize` for a stored topic: its owner is the account in its ARN."""
    key = TopicKey.from_arn(topic.arn)
    owner = key.account_id if key is not None else caller
    authorize(topic.attributes.get("Policy"), owner, caller, action, topic.arn)


def _allows(statement: dict[str, Any], caller: str, action: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = [a.lower() for a in _as_list(statement.get("Action"))]
    if not any(a in (action, "sns:*", "*") for a in actions):
        return False
    return _principal_matches(statement.get("Principal"), caller) and _conditions_hold(
        statement.get("Condition"), caller
    )


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal == "*":
        return True
    values = _as_list(principal.get("AWS")) if isinstance(principal, dict) else []
    return any(v in ("*", caller, f"arn:aws:iam::{caller}:root") for v in values)


def _conditions_hold(condition: Any, caller: str) -> bool:
    if not condition:
        return True
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if operator != "StringEquals" or not isinstance(tests, dict):
            return False
        for key, expected in tests.items():
            if key.lower() not in _ACCOUNT_KEYS or caller not in _as_list(expected):
                return False
    return True


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _load(policy: str) -> dict[str, Any]:
    try:
        document = json.loads(policy) if policy else {}
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    document.setdefault("Version", "2008-10-17")
    return document
