"""The answer to a batch call, shared by SQS (Send/Delete/ChangeVisibility batches) and SNS (PublishBatch).

Both services answer a batch the same way: each entry either succeeded, with its result, or failed,
with the error that names why. The error stays an exception here so that adapters map it to the
entry's ``Code``, ``Message`` and ``SenderFault`` with the same table they use for whole requests.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from loosely.core.frozen import record

T = TypeVar("T")


@record
class BatchFailure:
    """One failed batch entry: the error names the condition; adapters turn it into Code/Message."""

    id: str
    error: Exception
    sender_fault: bool = True


@record
class BatchResult(Generic[T]):
    """Entry ids with their results, and the entries that failed."""

    successful: list[tuple[str, T]]
    failed: list[BatchFailure]
