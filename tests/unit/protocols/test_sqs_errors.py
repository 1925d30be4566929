"""The SQS error table against botocore's models, and errors as boto3 raises them over both protocols."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.exceptions import ClientError

from loosely.core import errors as core
from loosely.protocols.errors import INTERNAL_FAILURE
from loosely.protocols.sqs.errors import SQS_ERROR_TABLE, SQS_ERRORS

from ._support import DATA, Bridge

URL = "http://localhost:9324/000000000000/q"
OLD_MODEL = json.loads((DATA / "sqs" / "2012-11-05" / "service-2.json").read_text())
GENERIC_JSON_CODES = {"InvalidParameterValueException", "MissingRequiredParameterException", "ServiceUnavailable"}


def test_table_codes_match_botocore_models() -> None:
    current = botocore.session.get_session().get_service_model("sqs")
    modeled = {shape.name for shape in current.error_shapes}
    for cls, error in SQS_ERRORS.items():
        if error is INTERNAL_FAILURE:
            continue
        shape = error.json_code.rpartition("#")[2]
        assert shape in modeled | GENERIC_JSON_CODES, cls
        old = OLD_MODEL["shapes"].get(shape, {}).get("error")
        if old is not None:
            assert error.query_code == old["code"], cls
            assert error.status == old["httpStatusCode"], cls


def test_every_core_error_class_has_an_entry() -> None:
    classes = [c for c in vars(core).values() if isinstance(c, type) and issubclass(c, core.LooselyError)]
    for cls in classes:
        assert SQS_ERROR_TABLE.lookup(cls("x")) is not None


def test_lookup_follows_mro_for_subclasses() -> None:
    class Narrower(core.QueueDoesNotExist):
        pass

    assert SQS_ERROR_TABLE.lookup(Narrower()).json_code == "QueueDoesNotExist"
    assert SQS_ERROR_TABLE.lookup(RuntimeError("boom")) is INTERNAL_FAILURE


@pytest.mark.parametrize(
    ("error", "exception_name", "code", "status"),
    [
        (core.QueueDoesNotExist(), "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", 400),
        (core.QueueNameExists("exists"), "QueueNameExists", "QueueAlreadyExists", 400),
        (core.PurgeQueueInProgress("wait"), "PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress", 403),
        (core.ReceiptHandleIsInvalid("bad"), "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 404),
        (core.OverLimit("full"), "OverLimit", "OverLimit", 403),
        (core.EmptyBatchRequest("none"), "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", 400),
        (core.InvalidAttributeName("nope"), "InvalidAttributeName", "InvalidAttributeName", 400),
        (core.InvalidParameterValue("bad value"), None, "InvalidParameterValue", 400),
        (core.MissingParameter("missing"), None, "MissingParameter", 400),
    ],
)
def test_core_error_reaches_boto3_as_aws_error(
    bridge: Bridge, error: Exception, exception_name: str | None, code: str, status: int
) -> None:
    bridge.queues.raises["purge_queue"] = error
    with pytest.raises(ClientError) as caught:
        bridge.client.purge_queue(QueueUrl=URL)
    assert caught.value.response["Error"]["Code"] == code
    query = bridge.client.meta.service_model.protocol == "query"
    expected = SQS_ERROR_TABLE.lookup(error).query_message if query else None
    assert caught.value.response["Error"]["Message"] == (expected or str(error))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if exception_name is not None:
        assert isinstance(caught.value, getattr(bridge.client.exceptions, exception_name))


def test_json_error_has_type_message_and_query_error_header(bridge_factory) -> None:
    bridge = bridge_factory("json")
    bridge.queues.raises["get_queue"] = core.QueueDoesNotExist()
    with pytest.raises(bridge.client.exceptions.QueueDoesNotExist):
        bridge.client.get_queue_url(QueueName="missing")
    response = bridge.responses[-1]
    assert json.loads(response.body) == {
        "__type": "com.amazonaws.sqs#QueueDoesNotExist",
        "message": "The specified queue does not exist.",
    }
    assert ("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender") in response.headers


def test_unexpected_exception_becomes_internal_failure_without_details(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    bridge.queues.raises["purge_queue"] = RuntimeError("secret detail")
    with pytest.raises(ClientError) as caught:
        bridge.client.purge_queue(QueueUrl=URL)
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert b"secret detail" not in bridge.responses[-1].body
    assert "secret detail" in caplog.text


def test_service_unavailable_is_a_receiver_fault(bridge_factory) -> None:
    bridge = bridge_factory("query")
    bridge.queues.raises["purge_queue"] = core.ServiceUnavailable("down")
    with pytest.raises(ClientError) as caught:
        bridge.client.purge_queue(QueueUrl=URL)
    assert caught.value.response["Error"]["Type"] == "Receiver"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
