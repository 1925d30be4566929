"""Dispatch: routing by target or Action, identity from the credential, and AWS-shaped errors only."""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loosely.core.queues.models import QueueKey
from loosely.protocols._wire import ServerContext, WireRequest, WireResponse
from loosely.protocols.dispatch import handle

from ._support import FakeQueues

NS = "{http://queue.amazonaws.com/doc/2012-11-05/}"
FORM = "application/x-www-form-urlencoded"
AUTH = (
    "AWS4-HMAC-SHA256 Credential={key}/20240101/{region}/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc"
)


def run(request: WireRequest, queues: FakeQueues | None = None, **ctx: Any) -> WireResponse:
    context = ServerContext(queues=queues or FakeQueues(), **ctx)  # type: ignore[arg-type]
    return asyncio.run(handle(request, context))


def json_request(target: str, body: bytes = b"{}", **headers: str) -> WireRequest:
    all_headers = {"x-amz-target": target, "content-type": "application/x-amz-json-1.0", "host": "h:1", **headers}
    return WireRequest(method="POST", path="/", query_string=b"", headers=all_headers, body=body)


def query_request(body: bytes, path: str = "/", method: str = "POST", qs: bytes = b"", **headers: str) -> WireRequest:
    all_headers = {"content-type": FORM, "host": "h:1", **headers}
    return WireRequest(method=method, path=path, query_string=qs, headers=all_headers, body=body)


def header(response: WireResponse, name: str) -> str | None:
    return next((v for k, v in response.headers if k.lower() == name.lower()), None)


def xml_code(response: WireResponse) -> str | None:
    return ET.fromstring(response.body).findtext(f"{NS}Error/{NS}Code")


def test_json_unknown_operation_is_unknown_operation_exception() -> None:
    response = run(json_request("AmazonSQS.Frobnicate"))
    assert response.status == 400
    assert orjson.loads(response.body)["__type"] == "com.amazon.coral.service#UnknownOperationException"
    assert header(response, "x-amzn-query-error") == "InvalidAction;Sender"


def test_json_unknown_target_prefix_is_unknown_operation() -> None:
    response = run(json_request("AmazonSNS.Publish"))
    assert response.status == 400
    assert "UnknownOperationException" in orjson.loads(response.body)["__type"]


def test_json_malformed_body_is_serialization_exception() -> None:
    response = run(json_request("AmazonSQS.ListQueues", b'{"QueueNamePrefix": '))
    assert response.status == 400
    assert orjson.loads(response.body)["__type"] == "com.amazon.coral.service#SerializationException"


def test_json_missing_required_is_missing_parameter() -> None:
    response = run(json_request("AmazonSQS.SendMessage", b'{"QueueUrl": "http://h/000000000000/q"}'))
    assert response.status == 400
    assert orjson.loads(response.body)["__type"] == "com.amazon.coral.service#MissingRequiredParameterException"
    assert header(response, "x-amzn-query-error") == "MissingParameter;Sender"


def test_query_unknown_action_is_invalid_action() -> None:
    response = run(query_request(b"Action=Frobnicate&Version=2012-11-05"))
    assert response.status == 400
    assert xml_code(response) == "InvalidAction"


def test_query_missing_action_is_missing_action() -> None:
    response = run(query_request(b"QueueName=q"))
    assert response.status == 400
    assert xml_code(response) == "MissingAction"


def test_query_bad_encoding_is_malformed_query_string() -> None:
    response = run(query_request(b"Action=ListQueues&QueueNamePrefix=%ff"))
    assert response.status == 404
    assert xml_code(response) == "MalformedQueryString"


def test_query_too_many_fields_is_rejected_not_crashed() -> None:
    body = b"Action=ListQueues&" + b"&".join(b"f%d=1" % i for i in range(20_000))
    response = run(query_request(body))
    assert response.status == 404


def test_query_get_with_query_string_is_served() -> None:
    queues = FakeQueues()
    response = run(query_request(b"", method="GET", qs=b"Action=ListQueues&QueueNamePrefix=ab"), queues)
    assert response.status == 200
    assert queues.last("list_queues")[2] == "ab"


def test_query_posted_to_queue_url_path_names_the_queue() -> None:
    queues = FakeQueues()
    response = run(query_request(b"Action=PurgeQueue&Version=2012-11-05", path="/123456789012/jobs"), queues)
    assert response.status == 200
    assert queues.last("purge_queue") == (QueueKey("123456789012", "us-east-1", "jobs"),)


def test_queue_url_without_queue_path_is_non_existent_queue() -> None:
    for url in (b"non+sense", b"http%3A%2F%2Fh%2F", b"http%3A%2F%2Fh%2Fa%2Fb%2Fc", b"http%3A%2F%2F%5B%3A%3A1%2Fa%2Fb"):
        response = run(query_request(b"Action=PurgeQueue&QueueUrl=" + url))
        assert xml_code(response) == "AWS.SimpleQueueService.NonExistentQueue"


def test_bare_queue_name_as_queue_url_names_the_callers_queue() -> None:
    queues = FakeQueues()
    auth = AUTH.format(key="111122223333", region="eu-central-1", service="sqs")
    run(json_request("AmazonSQS.PurgeQueue", b'{"QueueUrl": "jobs.fifo"}', authorization=auth), queues)
    assert queues.last("purge_queue") == (QueueKey("111122223333", "eu-central-1", "jobs.fifo"),)


def test_queue_url_path_takes_only_queue_actions() -> None:
    for action in (b"CreateQueue&QueueName=x", b"ListQueues", b"StartMessageMoveTask&SourceArn=a"):
        response = run(query_request(b"Action=" + action, path="/000000000000/q"))
        assert (response.status, xml_code(response)) == (400, "InvalidAction")
    response = run(query_request(b"Action=GetQueueUrl&QueueName=q", path="/000000000000/other"))
    assert response.status == 200


def test_queue_url_path_without_action_is_unknown_operation() -> None:
    response = run(query_request(b"", path="/000000000000/q"))
    assert response.status == 404
    assert response.body.endswith(b"<UnknownOperationException/>")
    assert xml_code(run(query_request(b""))) == "MissingAction"


def test_empty_query_result_is_self_closed() -> None:
    response = run(query_request(b"Action=ReceiveMessage&QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fq"))
    assert b"<ReceiveMessageResult/>" in response.body


def test_aws_style_queue_url_carries_its_region() -> None:
    queues = FakeQueues()
    url = "https://sqs.ap-south-1.amazonaws.com/123456789012/jobs"
    run(json_request("AmazonSQS.PurgeQueue", orjson.dumps({"QueueUrl": url})), queues)
    assert queues.last("purge_queue") == (QueueKey("123456789012", "ap-south-1", "jobs"),)


def test_credential_gives_account_and_region() -> None:
    queues = FakeQueues()
    auth = AUTH.format(key="111122223333", region="eu-central-1", service="sqs")
    response = run(json_request("AmazonSQS.CreateQueue", b'{"QueueName": "q"}', authorization=auth), queues)
    assert orjson.loads(response.body) == {"QueueUrl": "http://h:1/111122223333/q"}
    assert queues.last("create_queue")[0] == QueueKey("111122223333", "eu-central-1", "q")


def test_presigned_credential_in_query_string_gives_account() -> None:
    queues = FakeQueues()
    qs = b"Action=CreateQueue&QueueName=q&X-Amz-Credential=444455556666%2F20240101%2Fus-west-1%2Fsqs%2Faws4_request"
    run(query_request(b"", method="GET", qs=qs), queues)
    assert queues.last("create_queue")[0] == QueueKey("444455556666", "us-west-1", "q")


def test_non_numeric_access_key_uses_default_account_and_public_url() -> None:
    queues = FakeQueues()
    auth = AUTH.format(key="AKIAEXAMPLE", region="us-west-2", service="sqs")
    request = json_request("AmazonSQS.CreateQueue", b'{"QueueName": "q"}', authorization=auth)
    response = run(request, queues, default_account_id="999999999999", public_url="https://mq.example/")
    assert orjson.loads(response.body) == {"QueueUrl": "https://mq.example/999999999999/q"}


def test_request_id_header_is_a_fresh_uuid_and_in_the_xml() -> None:
    first = run(query_request(b"Action=ListQueues"))
    second = run(query_request(b"Action=ListQueues"))
    rid = header(first, "x-amzn-RequestId")
    assert rid is not None and uuid.UUID(rid).version == 4
    assert rid != header(second, "x-amzn-RequestId")
    assert ET.fromstring(first.body).findtext(f"{NS}ResponseMetadata/{NS}RequestId") == rid


def test_huge_message_body_reaches_the_service_unchanged() -> None:
    queues = FakeQueues()
    body = "x" * 2_000_000
    request = json_request(
        "AmazonSQS.SendMessage", orjson.dumps({"QueueUrl": "http://h/000000000000/q", "MessageBody": body})
    )
    assert run(request, queues).status == 200
    assert queues.last("send_message")[1].body == body


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([None, "AmazonSQS.SendMessage", "AmazonSQS.Nope", "x"]))
def test_arbitrary_bodies_never_escape_handle(body: bytes, target: str | None) -> None:
    request = json_request(target, body) if target else query_request(body)
    response = run(request)
    assert 400 <= response.status < 500
    assert header(response, "x-amzn-RequestId")
