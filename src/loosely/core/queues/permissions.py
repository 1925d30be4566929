"""AddPermission / RemovePermission as edits of the queue's Policy document.

AWS builds a real IAM policy: one statement per label (Sid), allowing ``SQS:<action>`` to the root
principal of each account on the queue's ARN. A single principal or action is a string, several
are a list, as AWS writes them. RemovePermission of the last statement removes the Policy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from loosely.core.errors import MissingParameter, OverLimit
from loosely.core.policies import allow_statement
from loosely.core.queues import limits
from loosely.core.queues.validation import invalid_value

ACTIONS = frozenset(
    {
        "*",
        "SendMessage",
        "ReceiveMessage",
        "DeleteMessage",
        "ChangeMessageVisibility",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "PurgeQueue",
        "ListQueueTags",
        "SendMessageBatch",
        "DeleteMessageBatch",
        "ChangeMessageVisibilityBatch",
    }
)
_LABEL = re.compile(r"[A-Za-z0-9_\-]{1," + str(limits.PERMISSION_LABEL_MAX) + "}")
_ACCOUNT_ID = re.compile(r"\d{12}")


def add_statement(
    policy: str | None, queue_arn: str, label: str, account_ids: Sequence[str], actions: Sequence[str]
) -> str:
    """The Policy with a statement for ``label`` added; raises if the label exists or inputs are invalid."""
    _check_inputs(label, account_ids, actions)
    document = _load(policy, queue_arn)
    statements = document["Statement"]
    assert isinstance(statements, list)
    if any(isinstance(s, dict) and s.get("Sid") == label for s in statements):
        raise invalid_value(label, "Label", "Already exists.")
    statements.append(allow_statement(label, "SQS", account_ids, actions, queue_arn))
    return json.dumps(document, separators=(",", ":"))


def remove_statement(policy: str | None, queue_arn: str, label: str) -> str | None:
    """The Policy without ``label``'s statement, or None when no statement remains."""
    document = _load(policy, queue_arn)
    statements = document["Statement"]
    assert isinstance(statements, list)
    kept = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == label)]
    if len(kept) == len(statements):
        raise invalid_value(label, "Label", "can't find label.")
    if not kept:
        return None
    document["Statement"] = kept
    return json.dumps(document, separators=(",", ":"))


def _check_inputs(label: str, account_ids: Sequence[str], actions: Sequence[str]) -> None:
    if not _LABEL.fullmatch(label):
        raise invalid_value(
            label, "Label", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        )
    if not account_ids:
        raise MissingParameter("The request must contain the parameter AWSAccountIds.")
    if not actions:
        raise MissingParameter("The request must contain the parameter Actions.")
    for account in account_ids:
        if not _ACCOUNT_ID.fullmatch(account):
            raise invalid_value(account, "AWSAccountIds", "An AWS account id is a 12-digit number.")
    for action in actions:
        if action not in ACTIONS:
            raise invalid_value(
                f"SQS:{action}", "ActionName", "Please refer to the appropriate WSDL for a list of valid actions. "
            )
    if len(actions) > limits.PERMISSION_ACTIONS_MAX:
        raise OverLimit(f"{len(actions)} Actions were found, maximum allowed is {limits.PERMISSION_ACTIONS_MAX}.")


def _load(policy: str | None, queue_arn: str) -> dict[str, object]:
    """The current policy as a mutable document with a Statement list (a custom policy may lack one)."""
    document: object = None
    if policy:
        try:
            document = json.loads(policy)
        except ValueError:
            document = None
    result: dict[str, object] = (
        dict(document)
        if isinstance(document, dict)
        else {"Version": "2008-10-17", "Id": f"{queue_arn}/SQSDefaultPolicy"}
    )
    statements = result.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    result["Statement"] = list(statements) if isinstance(statements, list) else []
    return result
