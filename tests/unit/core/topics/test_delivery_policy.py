"""Delivery policies: validation as AWS phrases it, resolution, and the retry schedule."""

from __future__ import annotations

import json
import random

import pytest

from loosely.core.errors import InvalidParameter, InvalidParameterValue
from loosely.core.topics.delivery_policy import (
    CUSTOMER_MANAGED_RETRY_POLICY,
    DEFAULT_HEADER_CONTENT_TYPE,
    DEFAULT_RETRY_POLICY,
    HEADER_CONTENT_TYPES,
    JITTER_FRACTION,
    SQS_ENDPOINT_RETRY_POLICY,
    BackoffFunction,
    EffectiveDeliveryPolicy,
    RequestPolicy,
    RetryPolicy,
    SubscriptionDeliveryPolicy,
    ThrottlePolicy,
    TopicDeliveryPolicy,
    backoff_delay_s,
    effective_delivery_policy,
    next_delay_s,
    parse_subscription_delivery_policy,
    parse_topic_delivery_policy,
    retry_delays,
    retry_policy_for_protocol,
    topic_effective_delivery_policy_json,
    total_retry_time_s,
)

RETRY = {"minDelayTarget": 1, "maxDelayTarget": 60, "numRetries": 50}


def sub(**sections: object) -> str:
    return json.dumps(sections)


def retry(**overrides: object) -> dict[str, object]:
    return {**RETRY, **overrides}


# --- parsing ----------------------------------------------------------------------------------------


def test_parse_subscription_policy_documented_example_reads_every_field() -> None:
    text = sub(
        healthyRetryPolicy={
            "minDelayTarget": 1,
            "maxDelayTarget": 60,
            "numRetries": 50,
            "numNoDelayRetries": 3,
            "numMinDelayRetries": 2,
            "numMaxDelayRetries": 35,
            "backoffFunction": "exponential",
        },
        throttlePolicy={"maxReceivesPerSecond": 10},
        requestPolicy={"headerContentType": "application/json"},
    )

    policy = parse_subscription_delivery_policy(text)

    assert policy == SubscriptionDeliveryPolicy(
        healthy_retry_policy=RetryPolicy(
            min_delay_target_s=1,
            max_delay_target_s=60,
            num_retries=50,
            num_no_delay_retries=3,
            num_min_delay_retries=2,
            num_max_delay_retries=35,
            backoff_function=BackoffFunction.EXPONENTIAL,
        ),
        throttle_policy=ThrottlePolicy(10),
        request_policy=RequestPolicy("application/json"),
    )
    assert policy.healthy_retry_policy is not None
    assert policy.healthy_retry_policy.num_backoff_retries == 10


def test_parse_topic_policy_reads_http_section() -> None:
    text = json.dumps(
        {
            "http": {
                "defaultHealthyRetryPolicy": {"minDelayTarget": 5, "maxDelayTarget": 40, "numRetries": 7},
                "disableSubscriptionOverrides": True,
                "defaultThrottlePolicy": {"maxReceivesPerSecond": 3},
                "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
            }
        }
    )

    policy = parse_topic_delivery_policy(text)

    assert policy == TopicDeliveryPolicy(
        default_healthy_retry_policy=RetryPolicy(min_delay_target_s=5, max_delay_target_s=40, num_retries=7),
        disable_subscription_overrides=True,
        default_throttle_policy=ThrottlePolicy(3),
        default_request_policy=RequestPolicy("text/plain; charset=UTF-8"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", SubscriptionDeliveryPolicy()),
        (sub(healthyRetryPolicy=None, throttlePolicy=None, guaranteed=False), SubscriptionDeliveryPolicy()),
        (sub(throttlePolicy={}), SubscriptionDeliveryPolicy()),
        (sub(healthyRetryPolicy=retry(backoffFunction="GEOMETRIC")).replace("50", "5"), None),
    ],
)
def test_parse_subscription_policy_optional_sections_default_to_none(
    text: str, expected: SubscriptionDeliveryPolicy | None
) -> None:
    policy = parse_subscription_delivery_policy(text)

    if expected is not None:
        assert policy == expected
    else:
        assert policy.healthy_retry_policy is not None
        assert policy.healthy_retry_policy.backoff_function is BackoffFunction.GEOMETRIC


def test_parse_subscription_policy_accepts_its_own_effective_policy_back() -> None:
    echoed = EffectiveDeliveryPolicy().to_json()

    policy = parse_subscription_delivery_policy(echoed)

    assert policy.healthy_retry_policy == DEFAULT_RETRY_POLICY


SUBSCRIPTION_ERRORS = [
    ("not json", "failed to parse JSON"),
    ("[1, 2]", "failed to parse JSON: the policy must be a JSON object"),
    (sub(healthyRetryPolicy=retry(), color="red"), "Unexpected JSON member: color"),
    (sub(healthyRetryPolicy=retry(extra=1)), "Unexpected JSON member: extra"),
    (sub(healthyRetryPolicy=[1]), "healthyRetryPolicy must be a JSON object"),
    (sub(healthyRetryPolicy={"numRetries": 5}), "healthyRetryPolicy.minDelayTarget must be specified"),
    (
        sub(healthyRetryPolicy={"minDelayTarget": 5, "numRetries": 5}),
        "healthyRetryPolicy.maxDelayTarget must be specified",
    ),
    (
        sub(healthyRetryPolicy={"minDelayTarget": 5, "maxDelayTarget": 5}),
        "healthyRetryPolicy.numRetries must be specified",
    ),
    (
        sub(healthyRetryPolicy=retry(minDelayTarget=0)),
        "healthyRetryPolicy.minDelayTarget must be greater than or equal to 1",
    ),
    (sub(healthyRetryPolicy=retry(minDelayTarget="5")), "healthyRetryPolicy.minDelayTarget must be an integer"),
    (sub(healthyRetryPolicy=retry(minDelayTarget=1.5)), "healthyRetryPolicy.minDelayTarget must be an integer"),
    (sub(healthyRetryPolicy=retry(numRetries=True)), "healthyRetryPolicy.numRetries must be an integer"),
    (
        sub(healthyRetryPolicy=retry(maxDelayTarget=3601)),
        "healthyRetryPolicy.maxDelayTarget must be less than or equal to 3600",
    ),
    (
        sub(healthyRetryPolicy=retry(minDelayTarget=30, maxDelayTarget=20)),
        "healthyRetryPolicy.maxDelayTarget must be greater than or equal to minDelayTarget",
    ),
    (sub(healthyRetryPolicy=retry(numRetries=101)), "healthyRetryPolicy.numRetries must be less than or equal to 100"),
    (sub(healthyRetryPolicy=retry(numRetries=-1)), "healthyRetryPolicy.numRetries must be greater than or equal to 0"),
    (
        sub(healthyRetryPolicy=retry(numNoDelayRetries=-1)),
        "healthyRetryPolicy.numNoDelayRetries must be greater than or equal to 0",
    ),
    (
        sub(healthyRetryPolicy=retry(numMinDelayRetries=-2)),
        "healthyRetryPolicy.numMinDelayRetries must be greater than or equal to 0",
    ),
    (
        sub(healthyRetryPolicy=retry(numMaxDelayRetries=-3)),
        "healthyRetryPolicy.numMaxDelayRetries must be greater than or equal to 0",
    ),
    (
        sub(healthyRetryPolicy=retry(numRetries=20, numNoDelayRetries=7, numMinDelayRetries=7, numMaxDelayRetries=7)),
        "healthyRetryPolicy.numRetries must be greater than or equal to total of numMinDelayRetries, "
        "numNoDelayRetries and numMaxDelayRetries",
    ),
    (
        sub(healthyRetryPolicy=retry(backoffFunction="quadratic")),
        "healthyRetryPolicy.backoffFunction must be one of linear, arithmetic, geometric, exponential",
    ),
    (
        sub(healthyRetryPolicy=retry(backoffFunction=3)),
        "healthyRetryPolicy.backoffFunction must be one of linear, arithmetic, geometric, exponential",
    ),
    (
        sub(throttlePolicy={"maxReceivesPerSecond": 0}),
        "throttlePolicy.maxReceivesPerSecond must be greater than or equal to 1",
    ),
    (sub(throttlePolicy={"rate": 1}), "Unexpected JSON member: rate"),
    (
        sub(requestPolicy={"headerContentType": "image/png"}),
        "requestPolicy.headerContentType is not a supported content type: image/png",
    ),
    (
        sub(requestPolicy={"headerContentType": 7}),
        "requestPolicy.headerContentType is not a supported content type: 7",
    ),
    (sub(guaranteed="yes"), "guaranteed must be a boolean"),
    (
        sub(sicklyRetryPolicy={"numRetries": 1}),
        "sicklyRetryPolicy.minDelayTarget must be specified",
    ),
]


@pytest.mark.parametrize(("text", "reason"), SUBSCRIPTION_ERRORS)
def test_parse_subscription_policy_invalid_raises_aws_message(text: str, reason: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_subscription_delivery_policy(text)

    assert caught.value.message == f"Invalid parameter: DeliveryPolicy: {reason}"
    assert isinstance(caught.value, InvalidParameterValue)


def test_parse_subscription_policy_inside_attributes_uses_attributes_reason_form() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_subscription_delivery_policy(sub(healthyRetryPolicy=retry(minDelayTarget=0)), in_attributes=True)

    assert caught.value.message == (
        "Invalid parameter: Attributes Reason: DeliveryPolicy: "
        "healthyRetryPolicy.minDelayTarget must be greater than or equal to 1"
    )


TOPIC_ERRORS = [
    (json.dumps({"throttlePolicy": {"maxReceivesPerSecond": 1}}), "Unexpected JSON member: throttlePolicy"),
    (json.dumps({"http": {"throttlePolicy": {}}}), "Unexpected JSON member: throttlePolicy"),
    (json.dumps({"http": 5}), "http must be a JSON object"),
    (
        json.dumps({"http": {"defaultHealthyRetryPolicy": retry(numRetries=101)}}),
        "http.defaultHealthyRetryPolicy.numRetries must be less than or equal to 100",
    ),
    (
        json.dumps({"http": {"disableSubscriptionOverrides": "true"}}),
        "http.disableSubscriptionOverrides must be a boolean",
    ),
    (
        json.dumps({"http": {"defaultThrottlePolicy": {"maxReceivesPerSecond": -1}}}),
        "http.defaultThrottlePolicy.maxReceivesPerSecond must be greater than or equal to 1",
    ),
    (
        json.dumps({"http": {"defaultRequestPolicy": {"headerContentType": "nope"}}}),
        "http.defaultRequestPolicy.headerContentType is not a supported content type: nope",
    ),
]


@pytest.mark.parametrize(("text", "reason"), TOPIC_ERRORS)
def test_parse_topic_policy_invalid_raises_aws_message(text: str, reason: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_topic_delivery_policy(text)

    assert caught.value.message == f"Invalid parameter: DeliveryPolicy: {reason}"


@pytest.mark.parametrize("content_type", sorted(HEADER_CONTENT_TYPES))
def test_parse_request_policy_every_documented_content_type_is_accepted(content_type: str) -> None:
    policy = parse_subscription_delivery_policy(
        sub(requestPolicy={"headerContentType": content_type + "; charset=UTF-8"})
    )

    assert policy.request_policy == RequestPolicy(content_type + "; charset=UTF-8")


def test_parse_topic_policy_empty_document_is_all_defaults() -> None:
    assert parse_topic_delivery_policy("{}") == TopicDeliveryPolicy()
    assert parse_topic_delivery_policy('{"http": {}}') == TopicDeliveryPolicy()


# --- resolution -------------------------------------------------------------------------------------

TOPIC_RETRY = RetryPolicy(min_delay_target_s=5, max_delay_target_s=5, num_retries=1)
SUB_RETRY = RetryPolicy(min_delay_target_s=9, max_delay_target_s=9, num_retries=2)


@pytest.mark.parametrize(
    ("topic", "subscription", "expected"),
    [
        (None, None, EffectiveDeliveryPolicy(retry=DEFAULT_RETRY_POLICY)),
        (
            TopicDeliveryPolicy(default_healthy_retry_policy=TOPIC_RETRY, default_throttle_policy=ThrottlePolicy(4)),
            None,
            EffectiveDeliveryPolicy(retry=TOPIC_RETRY, max_receives_per_second=4),
        ),
        (
            TopicDeliveryPolicy(default_healthy_retry_policy=TOPIC_RETRY, default_throttle_policy=ThrottlePolicy(4)),
            SubscriptionDeliveryPolicy(healthy_retry_policy=SUB_RETRY, request_policy=RequestPolicy("text/xml")),
            EffectiveDeliveryPolicy(retry=SUB_RETRY, max_receives_per_second=4, header_content_type="text/xml"),
        ),
        (
            TopicDeliveryPolicy(default_healthy_retry_policy=TOPIC_RETRY, disable_subscription_overrides=True),
            SubscriptionDeliveryPolicy(healthy_retry_policy=SUB_RETRY, throttle_policy=ThrottlePolicy(1)),
            EffectiveDeliveryPolicy(retry=TOPIC_RETRY),
        ),
        (
            None,
            SubscriptionDeliveryPolicy(throttle_policy=ThrottlePolicy(2)),
            EffectiveDeliveryPolicy(retry=DEFAULT_RETRY_POLICY, max_receives_per_second=2),
        ),
    ],
)
def test_effective_delivery_policy_subscription_overrides_topic_unless_disabled(
    topic: TopicDeliveryPolicy | None,
    subscription: SubscriptionDeliveryPolicy | None,
    expected: EffectiveDeliveryPolicy,
) -> None:
    assert effective_delivery_policy(topic, subscription) == expected


def test_effective_policy_default_json_matches_aws_default() -> None:
    text = EffectiveDeliveryPolicy().to_json()

    assert text == (
        '{"healthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,'
        '"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},'
        '"sicklyRetryPolicy":null,"throttlePolicy":null,"guaranteed":false}'
    )
    assert EffectiveDeliveryPolicy().content_type == DEFAULT_HEADER_CONTENT_TYPE


def test_effective_policy_json_shows_throttle_and_request_when_set() -> None:
    doc = json.loads(
        EffectiveDeliveryPolicy(max_receives_per_second=5, header_content_type="application/json").to_json()
    )

    assert doc["throttlePolicy"] == {"maxReceivesPerSecond": 5}
    assert doc["requestPolicy"] == {"headerContentType": "application/json"}
    assert list(doc) == ["healthyRetryPolicy", "sicklyRetryPolicy", "throttlePolicy", "requestPolicy", "guaranteed"]


def test_topic_effective_policy_json_default_matches_aws_default() -> None:
    assert topic_effective_delivery_policy_json(None) == (
        '{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,'
        '"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},'
        '"disableSubscriptionOverrides":false,'
        '"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}'
    )


def test_topic_effective_policy_json_carries_set_values() -> None:
    policy = TopicDeliveryPolicy(
        default_healthy_retry_policy=TOPIC_RETRY,
        disable_subscription_overrides=True,
        default_throttle_policy=ThrottlePolicy(8),
        default_request_policy=RequestPolicy("application/xml"),
    )

    doc = json.loads(topic_effective_delivery_policy_json(policy))["http"]

    assert doc["defaultHealthyRetryPolicy"]["numRetries"] == 1
    assert doc["disableSubscriptionOverrides"] is True
    assert doc["defaultThrottlePolicy"] == {"maxReceivesPerSecond": 8}
    assert doc["defaultRequestPolicy"] == {"headerContentType": "application/xml"}


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("http", SUB_RETRY),
        ("https", SUB_RETRY),
        ("sqs", SQS_ENDPOINT_RETRY_POLICY),
        ("lambda", SQS_ENDPOINT_RETRY_POLICY),
        ("firehose", SQS_ENDPOINT_RETRY_POLICY),
        ("email", CUSTOMER_MANAGED_RETRY_POLICY),
        ("email-json", CUSTOMER_MANAGED_RETRY_POLICY),
        ("sms", CUSTOMER_MANAGED_RETRY_POLICY),
        ("application", CUSTOMER_MANAGED_RETRY_POLICY),
    ],
)
def test_retry_policy_for_protocol_only_http_honours_delivery_policy(protocol: str, expected: RetryPolicy) -> None:
    assert retry_policy_for_protocol(protocol, EffectiveDeliveryPolicy(retry=SUB_RETRY)) == expected


def test_retry_policy_for_protocol_http_without_policy_is_default() -> None:
    assert retry_policy_for_protocol("http") == DEFAULT_RETRY_POLICY


# --- the schedule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (DEFAULT_RETRY_POLICY, [20, 20, 20]),
        # AWS's own example: max delay 40, the rest default, linear: 20, 30, 40.
        (RetryPolicy(max_delay_target_s=40), [20, 30, 40]),
        (RetryPolicy(num_retries=0), []),
        (RetryPolicy(min_delay_target_s=5, max_delay_target_s=50, num_retries=1), [5]),
        (
            RetryPolicy(
                min_delay_target_s=2,
                max_delay_target_s=8,
                num_retries=9,
                num_no_delay_retries=2,
                num_min_delay_retries=2,
                num_max_delay_retries=2,
            ),
            [0, 0, 2, 2, 2, 5, 8, 8, 8],
        ),
        (
            RetryPolicy(
                min_delay_target_s=1, max_delay_target_s=8, num_retries=4, backoff_function=BackoffFunction.GEOMETRIC
            ),
            [1, 2, 4, 8],
        ),
        (
            RetryPolicy(
                min_delay_target_s=1, max_delay_target_s=8, num_retries=4, backoff_function=BackoffFunction.EXPONENTIAL
            ),
            [1, 2, 4, 8],
        ),
        (
            RetryPolicy(
                min_delay_target_s=1, max_delay_target_s=13, num_retries=4, backoff_function=BackoffFunction.ARITHMETIC
            ),
            [1, 3, 7, 13],
        ),
        (
            RetryPolicy(
                min_delay_target_s=1, max_delay_target_s=15, num_retries=5, backoff_function=BackoffFunction.EXPONENTIAL
            ),
            [1, 1 + 14 / 15, 1 + 14 * 3 / 15, 1 + 14 * 7 / 15, 15],  # increments double: 1, 2, 4, 8 parts of 15
        ),
    ],
)
def test_retry_delays_without_jitter_follow_the_four_phases(policy: RetryPolicy, delays: list[float]) -> None:
    assert retry_delays(policy) == pytest.approx(delays)


def test_backoff_functions_keep_the_documented_order_between_min_and_max() -> None:
    # AWS's graph: 10 retries from 5 s to 260 s; all curves share the ends, linear is highest between.
    curves = {
        f: [
            backoff_delay_s(
                RetryPolicy(min_delay_target_s=5, max_delay_target_s=260, num_retries=10, backoff_function=f), i
            )
            for i in range(10)
        ]
        for f in BackoffFunction
    }

    for values in curves.values():
        assert values[0] == 5
        assert values[-1] == pytest.approx(260)
        assert values == sorted(values)
    for i in range(1, 9):
        order = [curves[BackoffFunction(f)][i] for f in ("linear", "arithmetic", "geometric", "exponential")]
        assert order == sorted(order, reverse=True)


def test_retry_delays_stop_at_the_one_hour_lifetime() -> None:
    policy = RetryPolicy(min_delay_target_s=3600, max_delay_target_s=3600, num_retries=5)

    assert retry_delays(policy) == [3600]
    assert next_delay_s(policy, 1) == 3600
    assert next_delay_s(policy, 2) is None
    assert total_retry_time_s(policy) == 5 * 3600


def test_retry_delays_lifetime_counts_every_phase() -> None:
    policy = RetryPolicy(
        min_delay_target_s=1000,
        max_delay_target_s=1500,
        num_retries=4,
        num_min_delay_retries=2,
        num_max_delay_retries=1,
    )

    # 1000 + 1000 + 1000 (backoff, alone: min) = 3000; the next, 1500, would end at 4500 > 3600.
    assert retry_delays(policy) == [1000, 1000, 1000]


def test_next_delay_matches_retry_delays_for_every_attempt() -> None:
    policy = RetryPolicy(
        min_delay_target_s=3,
        max_delay_target_s=90,
        num_retries=30,
        num_no_delay_retries=2,
        num_min_delay_retries=3,
        num_max_delay_retries=5,
        backoff_function=BackoffFunction.GEOMETRIC,
    )
    expected = retry_delays(policy)

    got = [next_delay_s(policy, attempt) for attempt in range(1, len(expected) + 2)]

    assert got[:-1] == pytest.approx(expected)
    assert got[-1] is None


def test_next_delay_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        next_delay_s(DEFAULT_RETRY_POLICY, 0)


def test_jitter_shortens_delays_by_at_most_the_fraction_and_is_reproducible() -> None:
    policy = RetryPolicy(min_delay_target_s=10, max_delay_target_s=100, num_retries=12, num_no_delay_retries=2)
    plain = retry_delays(policy)

    first = retry_delays(policy, random.Random(7))
    again = retry_delays(policy, random.Random(7))

    assert first == again
    assert first[:2] == [0, 0]
    for jittered, nominal in zip(first[2:], plain[2:], strict=True):
        assert nominal * (1 - JITTER_FRACTION) <= jittered <= nominal
    assert first != plain


class _Fixed:
    """A random source that always answers the same number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 20.0), (0.5, 19.0), (0.999, 18.002)])
def test_next_delay_jitter_uses_the_injected_source(draw: float, expected: float) -> None:
    assert next_delay_s(DEFAULT_RETRY_POLICY, 1, _Fixed(draw)) == pytest.approx(expected)


def test_sqs_endpoint_policy_matches_aws_table() -> None:
    policy = SQS_ENDPOINT_RETRY_POLICY
    delays_head = [next_delay_s(policy, a) for a in range(1, 17)]

    assert delays_head[:3] == [0, 0, 0]
    assert delays_head[3:5] == [1, 1]
    assert delays_head[5] == 1 and delays_head[14] == 20  # backoff: 10 retries from 1 s to 20 s
    assert delays_head[15] == 20
    assert policy.num_backoff_retries == 10
    assert next_delay_s(policy, 100_015) == 20
    assert next_delay_s(policy, 100_016) is None
    assert 23 * 86400 < total_retry_time_s(policy) < 24 * 86400  # "100,015 attempts over 23 days"


def test_customer_managed_policy_matches_aws_table() -> None:
    policy = CUSTOMER_MANAGED_RETRY_POLICY

    delays = retry_delays(policy)

    assert len(delays) == 50
    assert delays[:2] == [10, 10]
    assert delays[2] == 10 and delays[11] == 600
    assert delays[12:] == [600] * 38
    assert 6 * 3600 < total_retry_time_s(policy) < 7 * 3600  # "50 attempts, over 6 hours"
