"""The shipped service models: current botocore shapes plus the Query names of the Query era."""

from __future__ import annotations

import botocore.session

from loosely.protocols.model import load_service_model

SQS = load_service_model("sqs-2012-11-05")


def test_sqs_model_has_current_operations_and_members() -> None:
    current = botocore.session.get_session().get_service_model("sqs")
    assert set(SQS.operations) == set(current.operation_names)
    for name in current.operation_names:
        ours, theirs = SQS.operations[name], current.operation_model(name)
        if theirs.input_shape is not None:
            assert ours.input is not None
            assert set(ours.input.members) == set(theirs.input_shape.members)


def test_sqs_model_carries_query_names() -> None:
    send_batch = SQS.operations["SendMessageBatch"]
    assert send_batch.result_wrapper == "SendMessageBatchResult"
    assert send_batch.input is not None
    entries = send_batch.input.members["Entries"]
    assert entries.is_flattened
    assert entries.shape.member is not None and entries.shape.member.location_name == "SendMessageBatchRequestEntry"
    create = SQS.operations["CreateQueue"].input
    assert create is not None
    assert create.members["Attributes"].serialized_name == "Attribute"
    assert create.members["tags"].serialized_name == "Tag"
    assert SQS.xml_namespace == "http://queue.amazonaws.com/doc/2012-11-05/"


def test_sqs_model_every_output_has_a_result_wrapper() -> None:
    for op in SQS.operations.values():
        if op.output is not None:
            assert op.result_wrapper == f"{op.name}Result"


def test_sns_model_loads_with_query_names() -> None:
    sns = load_service_model("sns-2010-03-31")
    assert sns.operations["Publish"].result_wrapper == "PublishResult"
    assert sns.xml_namespace == "http://sns.amazonaws.com/doc/2010-03-31/"
