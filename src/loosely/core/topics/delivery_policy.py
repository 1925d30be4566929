"""SNS delivery policies: parsing, validation, resolution and the retry schedule they describe.

A delivery policy says how often, and how far apart, a failed push delivery is retried. It comes in
two documented forms, both JSON:

* topic-level (``SetTopicAttributes DeliveryPolicy``)::

    {"http": {"defaultHealthyRetryPolicy": {...}, "disableSubscriptionOverrides": false,
              "defaultThrottlePolicy": {"maxReceivesPerSecond": 10},
              "defaultRequestPolicy": {"headerContentType": "application/json"}}}

* subscription-level (``SetSubscriptionAttributes DeliveryPolicy``)::

    {"healthyRetryPolicy": {...}, "throttlePolicy": {...}, "requestPolicy": {...}}

A retry policy has four phases, run in order after the initial attempt fails:

1. ``numNoDelayRetries`` retries at once;
2. ``numMinDelayRetries`` retries ``minDelayTarget`` seconds apart;
3. the backoff phase: ``numRetries`` minus the other three phases' retries, the first
   ``minDelayTarget`` and the last ``maxDelayTarget`` seconds after its predecessor, the ones in between
   shaped by ``backoffFunction``;
4. ``numMaxDelayRetries`` retries ``maxDelayTarget`` seconds apart.

AWS documents the constraints (``minDelayTarget`` 1..``maxDelayTarget``, ``maxDelayTarget`` ..3,600,
``numRetries`` 0..100, the phase counts ≥ 0, ``maxReceivesPerSecond`` ≥ 1), the defaults (3 retries,
20 s apart, linear), that a custom HTTP/S policy never retries beyond one hour after the first attempt,
and that SNS adds jitter. AWS publishes only a graph of the four backoff functions, not their formulas;
the curves here all run from ``minDelayTarget`` to ``maxDelayTarget`` and keep the graph's order, from
the straightest to the most back-loaded: linear, arithmetic (increments that grow by a constant step),
geometric (a constant ratio between successive delays) and exponential (increments that double).

Error messages follow AWS's phrasing (``Invalid parameter: DeliveryPolicy: <path> must be ...``);
the paths are ``healthyRetryPolicy.numRetries`` for a subscription and
``http.defaultHealthyRetryPolicy.numRetries`` for a topic.

Delivery to AWS-managed endpoints (SQS, Lambda, Firehose) and to email/SMS/mobile push is not
customisable; `SQS_ENDPOINT_RETRY_POLICY` and `CUSTOMER_MANAGED_RETRY_POLICY` carry the fixed policies
AWS documents for them, and `retry_policy_for_protocol` picks the right one.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import field
from typing import Any, Protocol

from loosely.core.errors import InvalidParameter
from loosely.core.frozen import record

DEFAULT_HEADER_CONTENT_TYPE = "text/plain; charset=UTF-8"
"""The Content-Type of HTTP/S deliveries when no requestPolicy names one."""

HEADER_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "application/atom+xml",
        "application/json",
        "application/octet-stream",
        "application/soap+xml",
        "application/x-www-form-urlencoded",
        "application/xhtml+xml",
        "application/xml",
        "text/css",
        "text/csv",
        "text/html",
        "text/plain",
        "text/xml",
    }
)
"""Media types SNS accepts for ``headerContentType`` (parameters such as ``; charset=UTF-8`` may follow)."""

MAX_RETRIES = 100
MAX_DELAY_TARGET_S = 3600
HTTP_LIFETIME_S = 3600
"""A custom HTTP/S policy stops retrying once this long has passed since the first attempt (a hard AWS limit)."""

JITTER_FRACTION = 0.1
"""With a random source, each delay is shortened by up to this fraction, so retries from many
deliveries spread out without ever coming later than the policy allows."""


class BackoffFunction(enum.StrEnum):
    """How delays grow from ``minDelayTarget`` to ``maxDelayTarget`` during the backoff phase."""

    LINEAR = "linear"
    ARITHMETIC = "arithmetic"
    GEOMETRIC = "geometric"
    EXPONENTIAL = "exponential"


class RandomSource(Protocol):
    """What jitter needs from a random generator; `random.Random` qualifies."""

    def random(self) -> float: ...


@record
class RetryPolicy:
    """A ``healthyRetryPolicy``: the four phases, in seconds and retry counts.

    ``max_total_s`` is the delivery's lifetime: retries that would start later than this after the
    first attempt are dropped. It is one hour for HTTP/S policies and None (unbounded) for the fixed
    policies of AWS-managed endpoints, which retry for days.
    """

    min_delay_target_s: int = 20
    max_delay_target_s: int = 20
    num_retries: int = 3
    num_no_delay_retries: int = 0
    num_min_delay_retries: int = 0
    num_max_delay_retries: int = 0
    backoff_function: BackoffFunction = BackoffFunction.LINEAR
    max_total_s: int | None = HTTP_LIFETIME_S

    @property
    def num_backoff_retries(self) -> int:
        """AWS's formula: numRetries - numNoDelayRetries - numMinDelayRetries - numMaxDelayRetries."""
        return self.num_retries - self.num_no_delay_retries - self.num_min_delay_retries - self.num_max_delay_retries

    def to_dict(self) -> dict[str, Any]:
        """The JSON object AWS shows in EffectiveDeliveryPolicy, in AWS's key order."""
        return {
            "minDelayTarget": self.min_delay_target_s,
            "maxDelayTarget": self.max_delay_target_s,
            "numRetries": self.num_retries,
            "numMaxDelayRetries": self.num_max_delay_retries,
            "numNoDelayRetries": self.num_no_delay_retries,
            "numMinDelayRetries": self.num_min_delay_retries,
            "backoffFunction": self.backoff_function.value,
        }


DEFAULT_RETRY_POLICY = RetryPolicy()
"""What an HTTP/S subscription gets when neither its topic nor itself sets a policy: 3 retries, 20 s apart."""

SQS_ENDPOINT_RETRY_POLICY = RetryPolicy(
    min_delay_target_s=1,
    max_delay_target_s=20,
    num_retries=100_015,
    num_no_delay_retries=3,
    num_min_delay_retries=2,
    num_max_delay_retries=100_000,
    backoff_function=BackoffFunction.EXPONENTIAL,
    max_total_s=None,
)
"""AWS-managed endpoints (SQS, Lambda, Firehose): 3 immediate, 2 at 1 s, 10 backing off 1..20 s, 100,000 at 20 s."""

CUSTOMER_MANAGED_RETRY_POLICY = RetryPolicy(
    min_delay_target_s=10,
    max_delay_target_s=600,
    num_retries=50,
    num_no_delay_retries=0,
    num_min_delay_retries=2,
    num_max_delay_retries=38,
    backoff_function=BackoffFunction.EXPONENTIAL,
    max_total_s=None,
)
"""Email, SMS and mobile push: 2 at 10 s, 10 backing off 10..600 s, 38 at 600 s (about 6 hours)."""

_AWS_MANAGED_PROTOCOLS = frozenset({"sqs", "lambda", "firehose"})
_HTTP_PROTOCOLS = frozenset({"http", "https"})


@record
class ThrottlePolicy:
    max_receives_per_second: int


@record
class RequestPolicy:
    header_content_type: str


@record
class SubscriptionDeliveryPolicy:
    """A parsed subscription-level DeliveryPolicy; a section left out is None (the topic's applies)."""

    healthy_retry_policy: RetryPolicy | None = None
    throttle_policy: ThrottlePolicy | None = None
    request_policy: RequestPolicy | None = None


@record
class TopicDeliveryPolicy:
    """A parsed topic-level DeliveryPolicy (its ``http`` member); sections left out are None."""

    default_healthy_retry_policy: RetryPolicy | None = None
    disable_subscription_overrides: bool = False
    default_throttle_policy: ThrottlePolicy | None = None
    default_request_policy: RequestPolicy | None = None


@record
class EffectiveDeliveryPolicy:
    """What applies to one HTTP/S subscription once topic and subscription policies are combined."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_receives_per_second: int | None = None  # None: no throttling
    header_content_type: str | None = None  # None: the default, text/plain; charset=UTF-8

    @property
    def content_type(self) -> str:
        return self.header_content_type or DEFAULT_HEADER_CONTENT_TYPE

    def to_json(self) -> str:
        """The subscription's EffectiveDeliveryPolicy attribute, shaped as AWS returns it."""
        doc: dict[str, Any] = {
            "healthyRetryPolicy": self.retry.to_dict(),
            "sicklyRetryPolicy": None,
            "throttlePolicy": _throttle_dict(self.max_receives_per_second),
        }
        if self.header_content_type is not None:
            doc["requestPolicy"] = {"headerContentType": self.header_content_type}
        doc["guaranteed"] = False
        return json.dumps(doc, separators=(",", ":"))


# --- parsing and validation -------------------------------------------------------------------------


class _Invalid(Exception):
    """A validation failure inside this module; the public parsers turn it into InvalidParameter."""


def parse_subscription_delivery_policy(text: str, *, in_attributes: bool = False) -> SubscriptionDeliveryPolicy:
    """Parse and validate a subscription's DeliveryPolicy attribute.

    ``in_attributes`` selects the message form AWS uses when the policy arrives inside the
    ``Attributes`` map of Subscribe (``Invalid parameter: Attributes Reason: DeliveryPolicy: ...``).

    Raises:
        InvalidParameter: the policy is not JSON, has unknown members or breaks a constraint.
    """
    try:
        return _subscription_policy(_load_object(text))
    except _Invalid as exc:
        raise _invalid_parameter(exc, in_attributes) from None


def parse_topic_delivery_policy(text: str, *, in_attributes: bool = False) -> TopicDeliveryPolicy:
    """Parse and validate a topic's DeliveryPolicy attribute (see `parse_subscription_delivery_policy`)."""
    try:
        return _topic_policy(_load_object(text))
    except _Invalid as exc:
        raise _invalid_parameter(exc, in_attributes) from None


def _invalid_parameter(exc: _Invalid, in_attributes: bool) -> InvalidParameter:
    prefix = "Attributes Reason: DeliveryPolicy" if in_attributes else "DeliveryPolicy"
    return InvalidParameter(f"Invalid parameter: {prefix}: {exc}")


def _subscription_policy(doc: dict[str, Any]) -> SubscriptionDeliveryPolicy:
    _reject_unknown(doc, {"healthyRetryPolicy", "sicklyRetryPolicy", "throttlePolicy", "requestPolicy", "guaranteed"})
    _optional_retry(doc, "sicklyRetryPolicy", "sicklyRetryPolicy")  # accepted (AWS echoes it back) and ignored
    if doc.get("guaranteed") is not None and not isinstance(doc["guaranteed"], bool):
        raise _Invalid("guaranteed must be a boolean")
    return SubscriptionDeliveryPolicy(
        healthy_retry_policy=_optional_retry(doc, "healthyRetryPolicy", "healthyRetryPolicy"),
        throttle_policy=_optional_throttle(doc, "throttlePolicy", "throttlePolicy"),
        request_policy=_optional_request(doc, "requestPolicy", "requestPolicy"),
    )


_TOPIC_HTTP_KEYS = {
    "defaultHealthyRetryPolicy",
    "defaultSicklyRetryPolicy",
    "disableSubscriptionOverrides",
    "defaultThrottlePolicy",
    "defaultRequestPolicy",
}


def _topic_policy(doc: dict[str, Any]) -> TopicDeliveryPolicy:
    _reject_unknown(doc, {"http"})
    http = _section(doc, "http", "http")
    if http is None:
        return TopicDeliveryPolicy()
    _reject_unknown(http, _TOPIC_HTTP_KEYS)
    _optional_retry(http, "defaultSicklyRetryPolicy", "http.defaultSicklyRetryPolicy")
    disable = http.get("disableSubscriptionOverrides")
    if disable is not None and not isinstance(disable, bool):
        raise _Invalid("http.disableSubscriptionOverrides must be a boolean")
    return TopicDeliveryPolicy(
        default_healthy_retry_policy=_optional_retry(
            http, "defaultHealthyRetryPolicy", "http.defaultHealthyRetryPolicy"
        ),
        disable_subscription_overrides=bool(disable),
        default_throttle_policy=_optional_throttle(http, "defaultThrottlePolicy", "http.defaultThrottlePolicy"),
        default_request_policy=_optional_request(http, "defaultRequestPolicy", "http.defaultRequestPolicy"),
    )


def _load_object(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        raise _Invalid("failed to parse JSON") from None
    if not isinstance(doc, dict):
        raise _Invalid("failed to parse JSON: the policy must be a JSON object")
    return doc


def _reject_unknown(obj: Mapping[str, Any], known: set[str]) -> None:
    for key in obj:
        if key not in known:
            raise _Invalid(f"Unexpected JSON member: {key}")


def _section(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(f"{path} must be a JSON object")
    return value


def _int(obj: Mapping[str, Any], key: str, path: str, default: int | None = None) -> int:
    value = obj.get(key)
    if value is None:
        if default is None:
            raise _Invalid(f"{path}.{key} must be specified")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"{path}.{key} must be an integer")
    return value


def _at_least(value: int, minimum: int, path: str) -> None:
    if value < minimum:
        raise _Invalid(f"{path} must be greater than or equal to {minimum}")


def _at_most(value: int, maximum: int, path: str) -> None:
    if value > maximum:
        raise _Invalid(f"{path} must be less than or equal to {maximum}")


_RETRY_KEYS = {
    "minDelayTarget",
    "maxDelayTarget",
    "numRetries",
    "numNoDelayRetries",
    "numMinDelayRetries",
    "numMaxDelayRetries",
    "backoffFunction",
}


def _optional_retry(obj: Mapping[str, Any], key: str, path: str) -> RetryPolicy | None:
    """Validate one retry policy; minDelayTarget, maxDelayTarget and numRetries are required in it."""
    section = _section(obj, key, path)
    if section is None:
        return None
    _reject_unknown(section, _RETRY_KEYS)
    min_delay = _int(section, "minDelayTarget", path)
    max_delay = _int(section, "maxDelayTarget", path)
    retries = _int(section, "numRetries", path)
    no_delay = _int(section, "numNoDelayRetries", path, 0)
    min_retries = _int(section, "numMinDelayRetries", path, 0)
    max_retries = _int(section, "numMaxDelayRetries", path, 0)
    _at_least(min_delay, 1, f"{path}.minDelayTarget")
    _at_most(max_delay, MAX_DELAY_TARGET_S, f"{path}.maxDelayTarget")
    if max_delay < min_delay:
        raise _Invalid(f"{path}.maxDelayTarget must be greater than or equal to minDelayTarget")
    _at_least(retries, 0, f"{path}.numRetries")
    _at_most(retries, MAX_RETRIES, f"{path}.numRetries")
    counts = (("numNoDelayRetries", no_delay), ("numMinDelayRetries", min_retries), ("numMaxDelayRetries", max_retries))
    for name, count in counts:
        _at_least(count, 0, f"{path}.{name}")
    if no_delay + min_retries + max_retries > retries:
        raise _Invalid(
            f"{path}.numRetries must be greater than or equal to total of numMinDelayRetries, "
            "numNoDelayRetries and numMaxDelayRetries"
        )
    return RetryPolicy(
        min_delay_target_s=min_delay,
        max_delay_target_s=max_delay,
        num_retries=retries,
        num_no_delay_retries=no_delay,
        num_min_delay_retries=min_retries,
        num_max_delay_retries=max_retries,
        backoff_function=_backoff_function(section, path),
    )


def _backoff_function(section: Mapping[str, Any], path: str) -> BackoffFunction:
    value = section.get("backoffFunction")
    if value is None:
        return BackoffFunction.LINEAR
    try:
        return BackoffFunction(value.lower() if isinstance(value, str) else value)
    except ValueError:
        raise _Invalid(f"{path}.backoffFunction must be one of linear, arithmetic, geometric, exponential") from None


def _optional_throttle(obj: Mapping[str, Any], key: str, path: str) -> ThrottlePolicy | None:
    section = _section(obj, key, path)
    if section is None:
        return None
    _reject_unknown(section, {"maxReceivesPerSecond"})
    if section.get("maxReceivesPerSecond") is None:
        return None
    rate = _int(section, "maxReceivesPerSecond", path)
    _at_least(rate, 1, f"{path}.maxReceivesPerSecond")
    return ThrottlePolicy(rate)


def _optional_request(obj: Mapping[str, Any], key: str, path: str) -> RequestPolicy | None:
    section = _section(obj, key, path)
    if section is None:
        return None
    _reject_unknown(section, {"headerContentType"})
    value = section.get("headerContentType")
    if value is None:
        return None
    if not isinstance(value, str) or not is_supported_content_type(value):
        raise _Invalid(f"{path}.headerContentType is not a supported content type: {value}")
    return RequestPolicy(value)


def is_supported_content_type(value: str) -> bool:
    """True when ``value``'s media type (before any ``;`` parameters) is one SNS can send."""
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type in HEADER_CONTENT_TYPES


# --- resolution -----------------------------------------------------------------------------------


def effective_delivery_policy(
    topic: TopicDeliveryPolicy | None, subscription: SubscriptionDeliveryPolicy | None
) -> EffectiveDeliveryPolicy:
    """Combine a topic's and a subscription's policies as SNS does.

    Each section (retry, throttle, request) comes from the subscription when it sets it, else from
    the topic, else from the defaults; with the topic's ``disableSubscriptionOverrides`` the
    subscription's policy is ignored altogether.
    """
    t = topic or TopicDeliveryPolicy()
    s = SubscriptionDeliveryPolicy() if subscription is None or t.disable_subscription_overrides else subscription
    retry = s.healthy_retry_policy or t.default_healthy_retry_policy or DEFAULT_RETRY_POLICY
    throttle = s.throttle_policy or t.default_throttle_policy
    request = s.request_policy or t.default_request_policy
    return EffectiveDeliveryPolicy(
        retry=retry,
        max_receives_per_second=throttle.max_receives_per_second if throttle else None,
        header_content_type=request.header_content_type if request else None,
    )


def topic_effective_delivery_policy_json(topic: TopicDeliveryPolicy | None) -> str:
    """A topic's EffectiveDeliveryPolicy attribute: its policy with every default filled in, as AWS shows it."""
    t = topic or TopicDeliveryPolicy()
    http: dict[str, Any] = {
        "defaultHealthyRetryPolicy": (t.default_healthy_retry_policy or DEFAULT_RETRY_POLICY).to_dict(),
        "disableSubscriptionOverrides": t.disable_subscription_overrides,
    }
    if t.default_throttle_policy is not None:
        http["defaultThrottlePolicy"] = _throttle_dict(t.default_throttle_policy.max_receives_per_second)
    content_type = t.default_request_policy.header_content_type if t.default_request_policy else None
    http["defaultRequestPolicy"] = {"headerContentType": content_type or DEFAULT_HEADER_CONTENT_TYPE}
    return json.dumps({"http": http}, separators=(",", ":"))


def _throttle_dict(rate: int | None) -> dict[str, int] | None:
    return None if rate is None else {"maxReceivesPerSecond": rate}


def retry_policy_for_protocol(protocol: str, effective: EffectiveDeliveryPolicy | None = None) -> RetryPolicy:
    """The retry policy that governs a subscription of ``protocol``.

    Only HTTP/S honours DeliveryPolicy; AWS-managed endpoints and email/SMS/mobile push use fixed policies.
    """
    if protocol in _HTTP_PROTOCOLS:
        return (effective or EffectiveDeliveryPolicy()).retry
    if protocol in _AWS_MANAGED_PROTOCOLS:
        return SQS_ENDPOINT_RETRY_POLICY
    return CUSTOMER_MANAGED_RETRY_POLICY


# --- the retry schedule ---------------------------------------------------------------------------


def next_delay_s(policy: RetryPolicy, attempt: int, rng: RandomSource | None = None) -> float | None:
    """Seconds to wait before the next attempt, after ``attempt`` attempts (≥ 1) have failed.

    Returns None when the policy has no retry left: all ``numRetries`` are used, or the next one
    would start after the delivery's lifetime. Cost is constant in the retry number (the fixed SQS
    policy has 100,015 retries), apart from a walk over at most the backoff phase for lifetime checks.
    With ``rng`` the delay is jittered (shortened by up to `JITTER_FRACTION`).
    """
    if attempt < 1:
        raise ValueError("attempt counts the attempts already made and starts at 1")
    if attempt > policy.num_retries:
        return None
    delay = _nominal_delay(policy, attempt - 1)
    if policy.max_total_s is not None and _elapsed_through(policy, attempt) > policy.max_total_s:
        return None
    return _jittered(delay, rng)


def retry_delays(policy: RetryPolicy, rng: RandomSource | None = None) -> list[float]:
    """Every delay the policy allows, in order: what `next_delay_s` returns for attempts 1, 2, ..."""
    delays: list[float] = []
    elapsed = 0.0
    for index in range(policy.num_retries):
        delay = _nominal_delay(policy, index)
        elapsed += delay
        if policy.max_total_s is not None and elapsed > policy.max_total_s:
            break
        delays.append(_jittered(delay, rng))
    return delays


def total_retry_time_s(policy: RetryPolicy) -> float:
    """The time the whole schedule would take without jitter and without the lifetime limit."""
    return _elapsed_through(policy, policy.num_retries)


def _jittered(delay: float, rng: RandomSource | None) -> float:
    if rng is None or delay == 0:
        return delay
    return delay * (1.0 - JITTER_FRACTION * rng.random())


def _nominal_delay(policy: RetryPolicy, index: int) -> float:
    """The un-jittered delay before retry number ``index + 1``."""
    if index < policy.num_no_delay_retries:
        return 0.0
    index -= policy.num_no_delay_retries
    if index < policy.num_min_delay_retries:
        return float(policy.min_delay_target_s)
    index -= policy.num_min_delay_retries
    if index < policy.num_backoff_retries:
        return backoff_delay_s(policy, index)
    return float(policy.max_delay_target_s)


def _elapsed_through(policy: RetryPolicy, retries: int) -> float:
    """Nominal seconds from the first attempt to the start of retry number ``retries``."""
    no_delay = min(retries, policy.num_no_delay_retries)
    rest = retries - no_delay
    at_min = min(rest, policy.num_min_delay_retries)
    rest -= at_min
    backoff = min(rest, max(policy.num_backoff_retries, 0))
    rest -= backoff
    backoff_total = sum(backoff_delay_s(policy, i) for i in range(backoff))
    return at_min * policy.min_delay_target_s + backoff_total + rest * policy.max_delay_target_s


def backoff_delay_s(policy: RetryPolicy, index: int) -> float:
    """The delay of backoff-phase retry ``index`` (0-based): min first, max last, shaped in between."""
    low = float(policy.min_delay_target_s)
    high = float(policy.max_delay_target_s)
    steps = policy.num_backoff_retries - 1
    if steps <= 0 or high == low:
        return low
    k = min(max(index, 0), steps)
    function = policy.backoff_function
    if function is BackoffFunction.GEOMETRIC:
        return low * math.pow(high / low, k / steps)
    if function is BackoffFunction.ARITHMETIC:
        fraction = (k * (k + 1)) / (steps * (steps + 1))
    elif function is BackoffFunction.EXPONENTIAL:
        fraction = (2.0**k - 1.0) / (2.0**steps - 1.0)
    else:
        fraction = k / steps
    return low + (high - low) * fraction
