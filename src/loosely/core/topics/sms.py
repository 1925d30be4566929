"""SMS account settings, sandbox numbers and one-time passwords (pure rules).

SMS attributes are per account and region; the opt-out list is per account. A new sandbox number
is Pending until verified with the six-digit one-time password sent to it as an SMS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from loosely.core.errors import InvalidParameter
from loosely.core.topics.errors import ValidationError
from loosely.core.topics.validation import invalid

SMS_ATTRIBUTES = frozenset(
    {
        "MonthlySpendLimit",
        "DeliveryStatusIAMRole",
        "DeliveryStatusSuccessSamplingRate",
        "DefaultSenderID",
        "DefaultSMSType",
        "UsageReportS3Bucket",
    }
)
SMS_DEFAULTS = {"MonthlySpendLimit": "1"}
LANGUAGE_CODES = frozenset(
    {
        "en-US",
        "en-GB",
        "es-419",
        "es-ES",
        "de-DE",
        "fr-CA",
        "fr-FR",
        "it-IT",
        "ja-JP",
        "pt-BR",
        "kr-KR",
        "zh-CN",
        "zh-TW",
    }
)
_SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]{1,11}")


def check_sms_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    for name, value in attributes.items():
        if name not in SMS_ATTRIBUTES:
            raise InvalidParameter(f"{name} is not a valid attribute")
        if name == "DefaultSMSType" and value not in ("Promotional", "Transactional"):
            raise InvalidParameter("DefaultSMSType is invalid")
        if name == "DefaultSenderID" and not _SENDER_ID.fullmatch(value):
            raise InvalidParameter("DefaultSenderID is not a valid attribute")
        if name == "MonthlySpendLimit" and not value.isdigit():
            raise invalid("MonthlySpendLimit")
        if name == "DeliveryStatusSuccessSamplingRate" and not (value.isdigit() and int(value) <= 100):
            raise invalid("DeliveryStatusSuccessSamplingRate")
    return dict(attributes)


def check_language(code: str) -> None:
    if code not in LANGUAGE_CODES:
        raise invalid("LanguageCode")


def check_max_results(value: int | None, maximum: int) -> None:
    if value is not None and not 1 <= value <= maximum:
        bound = f"less than or equal to {maximum}" if value > maximum else "greater than or equal to 1"
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )


def one_time_password(seed: str) -> str:
    """Six digits derived from a random seed (the seed comes from the injected id generator)."""
    return f"{int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 1_000_000:06d}"


def verification_text(otp: str) -> str:
    return f"Your Amazon SNS verification code is: {otp}"
