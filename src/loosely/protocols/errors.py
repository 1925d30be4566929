"""How an error looks on the wire, and errors that the wire layer itself finds.

Why: core errors name conditions; each service translates them once, by a table of `AwsError`
values (``protocols/<service>/errors.py``) looked up along the exception's MRO. Problems found
before a request reaches a service (bad JSON, unknown action, broken form encoding) are
`WireError`s that carry their AWS form directly, because no core condition matches them.
"""

from __future__ import annotations

from collections.abc import Mapping

from loosely.core.frozen import record

__all__ = [
    "INTERNAL_FAILURE",
    "INVALID_ACTION",
    "MALFORMED_QUERY_STRING",
    "MISSING_ACTION",
    "SERIALIZATION",
    "UNKNOWN_OPERATION",
    "AwsError",
    "ErrorTable",
    "WireError",
]


@record
class AwsError:
    """One AWS error in both wire families.

    ``json_code`` is the shape name that goes into ``__type`` (a value containing ``#`` is used as
    it is, for errors outside the service's namespace); ``query_code`` is the ``<Code>`` of a Query
    error and the first half of the ``x-amzn-query-error`` header of a JSON error. ``query_message``,
    when set, replaces the message over Query, where AWS words a few errors differently.
    """

    json_code: str
    query_code: str
    status: int = 400
    sender_fault: bool = True
    query_message: str | None = None

    @property
    def fault(self) -> str:
        return "Sender" if self.sender_fault else "Receiver"


class WireError(Exception):
    """A request the wire layer rejects before any service sees it."""

    def __init__(self, error: AwsError, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


# AWS names a body it cannot read "MalformedInput" in x-amzn-query-error (recorded from SQS).
SERIALIZATION = AwsError("com.amazon.coral.service#SerializationException", "MalformedInput")
UNKNOWN_OPERATION = AwsError("com.amazon.coral.service#UnknownOperationException", "InvalidAction")
INVALID_ACTION = AwsError("InvalidAction", "InvalidAction")
MISSING_ACTION = AwsError("MissingAction", "MissingAction")
MALFORMED_QUERY_STRING = AwsError("MalformedQueryString", "MalformedQueryString", 404)
INTERNAL_FAILURE = AwsError("InternalFailure", "InternalFailure", 500, sender_fault=False)


class ErrorTable:
    """Maps exception classes to `AwsError`s, looked up along the MRO so subclasses inherit codes."""

    def __init__(self, table: Mapping[type[BaseException], AwsError], fallback: AwsError = INTERNAL_FAILURE) -> None:
        self._table = dict(table)
        self._fallback = fallback

    def lookup(self, exc: BaseException) -> AwsError:
        """The entry of the nearest class of ``exc`` in the table, else the fallback (a 500)."""
        if isinstance(exc, WireError):
            return exc.error
        for cls in type(exc).__mro__:
            found = self._table.get(cls)
            if found is not None:
                return found
        return self._fallback

    def __contains__(self, cls: object) -> bool:
        return cls in self._table
