"""SNS topics in the pure domain: records (`models`) and subscription filter policies (`filter_policy`)."""

from loosely.core.topics.filter_policy import (
    FilterPolicy,
    FilterPolicyScope,
    InvalidFilterPolicy,
    MessageFields,
    check_scope,
    parse_filter_policy,
)

__all__ = [
    "FilterPolicy",
    "FilterPolicyScope",
    "InvalidFilterPolicy",
    "MessageFields",
    "check_scope",
    "parse_filter_policy",
]
