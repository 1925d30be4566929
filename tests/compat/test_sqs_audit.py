"""SQS answers corrected by an audit against an outside test suite (see docs/compatibility-audit.md).

Each test states the AWS behaviour it checks and where that fact comes from; both wire protocols run.
"""

from __future__ import annotations

from typing import Any

import pytest
from compat_helpers import raised, unique

pytestmark = pytest.mark.compat


def new_queue(sqs: Any, **attributes: str) -> str:
    return str(sqs.create_queue(QueueName=unique("audit"), Attributes=attributes)["QueueUrl"])


def test_get_queue_attributes_without_names_has_no_attributes_member(sqs: Any) -> None:
    """GetQueueAttributes without AttributeNames returns no attributes at all, and an SDK sees no
    ``Attributes`` key (aws/aws-cli#17 and duo-labs/cloudmapper#209 quote AWS's empty answer)."""
    url = new_queue(sqs, VisibilityTimeout="7")

    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url)
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[])
    # asking for an attribute the queue does not have is an empty map over JSON (LocalStack's AWS
    # recording, tests/compat/test_sqs_snapshots.py), which the Query wire cannot tell from none
    assert not sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes")
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "7"
    }


def test_tag_queue_with_no_tags_is_a_missing_parameter(sqs: Any) -> None:
    """TagQueue's Tags is required; an empty map sends nothing on the Query wire, so AWS answers
    MissingParameter in both protocols and leaves the queue's tags alone."""
    url = sqs.create_queue(QueueName=unique("audit"), tags={"team": "a"})["QueueUrl"]

    code, message, status = raised(sqs.tag_queue, QueueUrl=url, Tags={})

    assert (code, status) == ("MissingParameter", 400)
    assert message.startswith("The request must contain the parameter Tag")
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}


def test_a_receipt_of_an_earlier_receive_changes_nothing_and_is_accepted_on_a_standard_queue(sqs: Any) -> None:
    """ChangeMessageVisibility with the receipt of an earlier receive succeeds on a standard queue (moto's
    AWS-checked receipt-handle rework, getmoto/moto#4655, and LocalStack's: AWS was not seen to return
    MessageNotInflight), in a batch too; here it leaves the message under its latest receive."""
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    (first,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    (latest,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]

    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    batch = sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": "old", "ReceiptHandle": first["ReceiptHandle"], "VisibilityTimeout": 0}]
    )

    assert [entry["Id"] for entry in batch["Successful"]] == ["old"] and not batch.get("Failed")
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=latest["ReceiptHandle"], VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "m"


def test_a_receipt_of_an_earlier_receive_is_still_refused_on_a_fifo_queue(sqs: Any) -> None:
    """FIFO receipts go stale when the message is received again; loosely keeps refusing them there."""
    url = str(
        sqs.create_queue(
            QueueName=unique("audit") + ".fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"]
    )
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageGroupId="g")
    (first,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)

    code, _, status = raised(
        sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )

    assert (code, status) == ("AWS.SimpleQueueService.MessageNotInflight", 400)
