"""Mobile push platform applications and endpoints: names, ARNs and attribute rules (pure).

An application holds the credentials of one push service (APNS, FCM/GCM, ADM, Baidu, WNS, MPNS);
an endpoint is one device (its ``Token``) of one application. The credentials are write-only:
Get*Attributes never returns ``PlatformCredential`` or ``PlatformPrincipal``, as AWS does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from loosely.core.topics.validation import invalid

PLATFORMS = frozenset(
    {
        "ADM",
        "APNS",
        "APNS_SANDBOX",
        "APNS_VOIP",
        "APNS_VOIP_SANDBOX",
        "MACOS",
        "MACOS_SANDBOX",
        "BAIDU",
        "GCM",
        "MPNS",
        "WNS",
    }
)
APPLICATION_ATTRIBUTES = frozenset(
    {
        "PlatformCredential",
        "PlatformPrincipal",
        "EventEndpointCreated",
        "EventEndpointDeleted",
        "EventEndpointUpdated",
        "EventDeliveryFailure",
        "SuccessFeedbackRoleArn",
        "FailureFeedbackRoleArn",
        "SuccessFeedbackSampleRate",
        "ApplePlatformTeamID",
        "ApplePlatformBundleID",
        "Enabled",
    }
)
SECRET_ATTRIBUTES = frozenset({"PlatformCredential", "PlatformPrincipal"})
ENDPOINT_ATTRIBUTES = frozenset({"CustomUserData", "Enabled", "Token"})
MAX_CUSTOM_USER_DATA_BYTES = 2048
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def application_arn(region: str, account_id: str, platform: str, name: str) -> str:
    return f"arn:aws:sns:{region}:{account_id}:app/{platform}/{name}"


def endpoint_arn(application: str, endpoint_id: str) -> str:
    """``arn:...:endpoint/<PLATFORM>/<name>/<id>`` for an application ``arn:...:app/<PLATFORM>/<name>``."""
    head, _, resource = application.rpartition(":")
    return f"{head}:{resource.replace('app/', 'endpoint/', 1)}/{endpoint_id}"


def application_of(endpoint: str) -> str | None:
    """The application ARN an endpoint ARN belongs to, or None when it is not an endpoint ARN."""
    parts = endpoint.split(":", 5)
    if len(parts) != 6 or parts[2] != "sns":
        return None
    segments = parts[5].split("/")
    if len(segments) != 4 or segments[0] != "endpoint":
        return None
    return f"{':'.join(parts[:5])}:app/{segments[1]}/{segments[2]}"


def is_application_arn(arn: str) -> bool:
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "sns" and len(parts[5].split("/")) == 3 and parts[5].startswith("app/")


def check_application(name: str, platform: str, attributes: Mapping[str, str]) -> dict[str, str]:
    """Validate CreatePlatformApplication; return the attributes to store."""
    if not name:
        raise invalid(f"{name} Reason: cannot be empty")
    if len(name) > 256:
        raise invalid(f"{name} Reason: must be at most 256 characters long")
    if not _NAME.fullmatch(name):
        raise invalid(f"{name} Reason: must contain only characters 'a'-'z', 'A'-'Z', '0'-'9', '_', '-', and '.'")
    if platform not in PLATFORMS:
        raise invalid(f"Platform Reason: {platform} is not supported")
    stored = check_application_attributes(attributes)
    if "PlatformPrincipal" in stored and "PlatformCredential" not in stored:
        raise invalid("Attributes Reason: PlatformPrincipal attribute provided without PlatformCredential")
    if "PlatformCredential" not in stored:
        raise invalid("Attributes Reason: PlatformCredential attribute is required")
    if platform != "GCM" and "PlatformPrincipal" not in stored:
        raise invalid("Attributes Reason: PlatformCredential attribute provided without PlatformPrincipal")
    return {"Enabled": "true", **stored}


def check_application_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in attributes.items():
        if name not in APPLICATION_ATTRIBUTES:
            raise invalid(f"Attributes Reason: Invalid attribute name: {name}")
        out[name] = _boolean(name, value) if name == "Enabled" else value
    return out


def visible_application_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k not in SECRET_ATTRIBUTES}


def check_endpoint_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in attributes.items():
        if name not in ENDPOINT_ATTRIBUTES:
            raise invalid(f"Attributes Reason: Invalid attribute name: {name}")
        if name == "CustomUserData" and len(value.encode("utf-8")) > MAX_CUSTOM_USER_DATA_BYTES:
            raise invalid(
                "Attributes Reason: Invalid value for attribute: CustomUserData: must be at most 2048 bytes long "
                "in UTF-8 encoding"
            )
        if name == "Token" and not value:
            raise invalid("Attributes Reason: Invalid value for attribute: Token: must not be empty")
        out[name] = _boolean(name, value) if name == "Enabled" else value
    return out


def _boolean(name: str, value: str) -> str:
    if value.lower() not in ("true", "false"):
        raise invalid(f"Attributes Reason: Invalid value for attribute: {name}: must be true or false")
    return value.lower()
