"""SNS topics in the pure domain: records (`models`) and subscription filter policies (`filter_policy`).

The filter-policy names below are loaded when first used, not with the package: the storage layer
imports `archive` from here at start-up, and a server starts without SNS's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from loosely.core.topics import filter_policy

        return getattr(filter_policy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
