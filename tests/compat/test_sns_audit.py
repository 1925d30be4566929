"""SNS answers corrected by an audit against an outside test suite (see docs/compatibility-audit.md).

Each test states the AWS behaviour it checks and where that fact comes from.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from compat_helpers import raised

pytestmark = pytest.mark.compat


def test_subscribing_a_deleted_platform_endpoint_is_an_invalid_endpoint(sns: Any) -> None:
    """Subscribe with protocol ``application`` to an endpoint that no longer exists fails as an invalid
    Endpoint parameter (400), not NotFound; AWS words it without a space before the ARN (moto's
    AWS-verified test_publish_to_deleted_platform_endpoint)."""
    suffix = uuid.uuid4().hex[:8]
    app = sns.create_platform_application(
        Name=f"audit-{suffix}", Platform="GCM", Attributes={"PlatformCredential": "server-key"}
    )["PlatformApplicationArn"]
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=app, Token=f"token-{suffix}")["EndpointArn"]
    topic = sns.create_topic(Name=f"audit-{suffix}")["TopicArn"]
    sns.delete_endpoint(EndpointArn=endpoint)

    assert raised(sns.subscribe, TopicArn=topic, Protocol="application", Endpoint=endpoint) == (
        "InvalidParameter",
        f"Invalid parameter: Endpoint Reason: Endpoint does not exist for endpoint arn{endpoint}",
        400,
    )
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
