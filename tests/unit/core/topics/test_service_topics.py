"""TopicService: topics, their attributes, idempotent creation, listing, permissions, tags, data protection."""

from __future__ import annotations

import json

import pytest
from test_service_support import OTHER, SCOPE, Harness, policy_json

from loosely.core.errors import InvalidParameter, ResourceNotFound
from loosely.core.topics.errors import AuthorizationError, NotFound, TagLimitExceeded
from loosely.core.topics.values import AccountScope

ARN = "arn:aws:sns:us-east-1:123456789012:orders"


async def test_create_topic_returns_arn_and_default_attributes(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {})

    attrs = await h.service.get_topic_attributes(SCOPE, arn)

    assert arn == ARN
    assert attrs["TopicArn"] == ARN
    assert attrs["Owner"] == "123456789012"
    assert attrs["DisplayName"] == ""
    assert (attrs["SubscriptionsConfirmed"], attrs["SubscriptionsPending"], attrs["SubscriptionsDeleted"]) == (
        "0",
        "0",
        "0",
    )
    policy = policy_json(attrs["Policy"])
    assert policy["Id"] == "__default_policy_ID"
    statement = policy["Statement"][0]  # type: ignore[index]
    assert statement["Condition"] == {"StringEquals": {"AWS:SourceOwner": "123456789012"}}
    assert "SNS:Publish" in statement["Action"]
    effective = json.loads(attrs["EffectiveDeliveryPolicy"])
    assert effective["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3
    assert "FifoTopic" not in attrs


async def test_create_topic_same_attributes_is_idempotent_and_different_is_invalid(h: Harness) -> None:
    first = await h.service.create_topic(SCOPE, "orders", {"DisplayName": "Orders"}, [("team", "a")])

    again = await h.service.create_topic(SCOPE, "orders", {"DisplayName": "Orders"}, [("team", "a")])
    assert again == first
    with pytest.raises(InvalidParameter, match="Topic already exists with different attributes"):
        await h.service.create_topic(SCOPE, "orders", {"DisplayName": "Other"})
    with pytest.raises(InvalidParameter, match="Topic already exists with different tags"):
        await h.service.create_topic(SCOPE, "orders", {}, [("team", "b")])


@pytest.mark.parametrize("name", ["", "has space", "x" * 257, "dot.name", "plain.fifo"])
async def test_create_topic_bad_name_is_invalid_topic_name(h: Harness, name: str) -> None:
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: Topic Name$"):
        await h.service.create_topic(SCOPE, name, {})


async def test_create_fifo_topic_needs_suffix_and_gets_fifo_attributes(h: Harness) -> None:
    with pytest.raises(InvalidParameter, match=r"Fifo Topic names must end with \.fifo"):
        await h.service.create_topic(SCOPE, "orders", {"FifoTopic": "true"})

    arn = await h.service.create_topic(SCOPE, "orders.fifo", {"FifoTopic": "true", "ContentBasedDeduplication": "True"})
    attrs = await h.service.get_topic_attributes(SCOPE, arn)

    assert attrs["FifoTopic"] == "true"
    assert attrs["ContentBasedDeduplication"] == "true"
    assert attrs["FifoThroughputScope"] == "Topic"


async def test_fifo_only_attributes_are_refused_on_standard_topics(h: Harness) -> None:
    with pytest.raises(InvalidParameter, match="Content based deduplication can only be set for FIFO topics"):
        await h.service.create_topic(SCOPE, "orders", {"ContentBasedDeduplication": "true"})


async def test_unknown_attribute_is_invalid_attribute_name(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {})

    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: AttributeName$"):
        await h.service.set_topic_attributes(SCOPE, arn, "Bogus", "1")
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: AttributeName$"):
        await h.service.set_topic_attributes(SCOPE, arn, "FifoTopic", "true")


async def test_set_topic_attributes_validates_and_stores(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {})

    await h.service.set_topic_attributes(SCOPE, arn, "SignatureVersion", "2")
    await h.service.set_topic_attributes(SCOPE, arn, "DisplayName", "Shop")
    policy = {"http": {"defaultHealthyRetryPolicy": {"numRetries": 5, "minDelayTarget": 1, "maxDelayTarget": 9}}}
    await h.service.set_topic_attributes(SCOPE, arn, "DeliveryPolicy", json.dumps(policy))
    attrs = await h.service.get_topic_attributes(SCOPE, arn)

    assert attrs["SignatureVersion"] == "2"
    assert attrs["DisplayName"] == "Shop"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 5
    with pytest.raises(InvalidParameter, match="SignatureVersion"):
        await h.service.set_topic_attributes(SCOPE, arn, "SignatureVersion", "3")
    with pytest.raises(InvalidParameter, match="DeliveryPolicy"):
        await h.service.set_topic_attributes(SCOPE, arn, "DeliveryPolicy", '{"http": {"bogus": 1}}')


async def test_topic_arn_errors_follow_aws(h: Harness) -> None:
    with pytest.raises(InvalidParameter, match="An ARN must have at least 6 elements, not 1"):
        await h.service.get_topic_attributes(SCOPE, "orders")
    with pytest.raises(InvalidParameter, match=r"^Invalid parameter: TopicArn$"):
        await h.service.get_topic_attributes(SCOPE, "arn:aws:sns:eu-west-1:123456789012:orders")
    with pytest.raises(NotFound, match=r"^Topic does not exist$"):
        await h.service.get_topic_attributes(SCOPE, ARN)


async def test_delete_topic_removes_it_and_its_subscriptions_and_is_idempotent(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {})
    sub = await h.service.subscribe(SCOPE, arn, "sqs", "arn:aws:sqs:us-east-1:123456789012:q", {})

    await h.service.delete_topic(SCOPE, arn)
    await h.service.delete_topic(SCOPE, arn)

    assert (await h.service.list_topics(SCOPE, None)).items == []
    assert await h.service.get_subscription(sub) is None


async def test_list_topics_pages_by_100_in_arn_order(h: Harness) -> None:
    names = [f"t{i:03d}" for i in range(105)]
    for name in names:
        await h.service.create_topic(SCOPE, name, {})
    await h.service.create_topic(AccountScope("999999999999", "us-east-1"), "elsewhere", {})

    first = await h.service.list_topics(SCOPE, None)
    second = await h.service.list_topics(SCOPE, first.next_token)

    assert len(first.items) == 100 and first.next_token
    assert [a.rsplit(":", 1)[1] for a in [*first.items, *second.items]] == names
    assert second.next_token is None
    with pytest.raises(InvalidParameter, match="NextToken"):
        await h.service.list_topics(SCOPE, "%%%")


async def test_add_and_remove_permission_edit_policy(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {})

    await h.service.add_permission(SCOPE, arn, "share", ["210987654321"], ["Publish"])
    statements = policy_json((await h.service.get_topic_attributes(SCOPE, arn))["Policy"])["Statement"]
    assert statements[-1] == {  # type: ignore[index]
        "Sid": "share",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": "SNS:Publish",
        "Resource": arn,
    }
    with pytest.raises(InvalidParameter, match="Statement already exists"):
        await h.service.add_permission(SCOPE, arn, "share", ["210987654321"], ["Publish"])
    with pytest.raises(InvalidParameter, match="out of service scope"):
        await h.service.add_permission(SCOPE, arn, "bad", ["210987654321"], ["Fly"])

    await h.service.remove_permission(SCOPE, arn, "share")
    statements = policy_json((await h.service.get_topic_attributes(SCOPE, arn))["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["__default_statement_ID"]  # type: ignore[index, union-attr]


async def test_other_account_needs_a_policy_statement(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {})

    with pytest.raises(AuthorizationError, match="is not authorized to perform: SNS:GetTopicAttributes"):
        await h.service.get_topic_attributes(OTHER, arn)
    await h.service.add_permission(SCOPE, arn, "share", [OTHER.account_id], ["GetTopicAttributes"])
    assert (await h.service.get_topic_attributes(OTHER, arn))["TopicArn"] == arn


async def test_tags_add_replace_remove_and_limit(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {}, [("a", "1")])

    await h.service.tag_resource(SCOPE, arn, [("a", "2"), ("b", "3")])
    assert await h.service.list_tags_for_resource(SCOPE, arn) == [("a", "2"), ("b", "3")]
    await h.service.untag_resource(SCOPE, arn, ["a", "missing"])
    assert await h.service.list_tags_for_resource(SCOPE, arn) == [("b", "3")]

    with pytest.raises(TagLimitExceeded, match="tag quota"):
        await h.service.tag_resource(SCOPE, arn, [(f"k{i}", "v") for i in range(50)])
    with pytest.raises(InvalidParameter, match=r"Duplicated keys are not allowed\."):
        await h.service.tag_resource(SCOPE, arn, [("x", "1"), ("x", "2")])
    with pytest.raises(ResourceNotFound, match="Resource does not exist"):
        await h.service.list_tags_for_resource(SCOPE, ARN + "-missing")


async def test_data_protection_policy_is_stored_apart_from_attributes(h: Harness) -> None:
    arn = await h.service.create_topic(SCOPE, "orders", {})
    document = json.dumps({"Name": "p", "Version": "2021-06-01", "Statement": []})

    assert await h.service.get_data_protection_policy(SCOPE, arn) is None
    await h.service.put_data_protection_policy(SCOPE, arn, document)

    assert await h.service.get_data_protection_policy(SCOPE, arn) == document
    assert "DataProtectionPolicy" not in await h.service.get_topic_attributes(SCOPE, arn)
    with pytest.raises(InvalidParameter):
        await h.service.put_data_protection_policy(SCOPE, arn, "{nope")


async def test_topic_delivery_policy_is_stored_as_aws_rewrites_it(h: Harness) -> None:
    arn = await h.service.create_topic(
        SCOPE, "orders", {"DeliveryPolicy": '{"http": {"defaultRequestPolicy": {"headerContentType": "text/csv"}}}'}
    )

    stored = (await h.service.get_topic_attributes(SCOPE, arn))["DeliveryPolicy"]
    await h.service.set_topic_attributes(SCOPE, arn, "DeliveryPolicy", '{"http": {"defaultHealthyRetryPolicy": null}}')

    assert (
        stored
        == '{"http":{"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/csv"}}}'
    )
    assert (await h.service.get_topic_attributes(SCOPE, arn))["DeliveryPolicy"] == (
        '{"http":{"disableSubscriptionOverrides":false}}'
    )
    # The same policy written differently is the same attribute for CreateTopic's idempotence.
    assert (
        await h.service.create_topic(SCOPE, "orders", {"DeliveryPolicy": '{"http":{"defaultHealthyRetryPolicy":null}}'})
        == arn
    )
