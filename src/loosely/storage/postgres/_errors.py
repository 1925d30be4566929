"""Driver errors, mapped once: everything psycopg raises becomes a core error here.

The store calls `map_errors` around every database interaction, so no other module needs to know
psycopg's exception tree. Connection-level failures (server down, connection reset, pool
exhausted, timeouts) become ``ServiceUnavailable``, which SDKs treat as retryable. Conflicts that
a retry resolves (deadlock, serialization failure) are recognised by `is_transient_conflict` so the
caller can run the whole transaction again before giving up. Text that PostgreSQL cannot store
(U+0000, which SQLite keeps) is the client's: ``InvalidParameterValue``, a 400. Anything else is a
bug in the store (bad SQL, a violated invariant) and is left to propagate unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool
from psycopg import errors as pgerrors

from loosely.core.errors import InvalidParameterValue, LooselyError, ServiceUnavailable

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The queue store is unavailable. Please retry."
NUL_MESSAGE = "A value contains the character U+0000, which this store cannot keep."

# SQLSTATE classes that mean "the server or the link is not usable right now".
_UNAVAILABLE_CLASSES = ("08", "53", "57")  # connection exception, insufficient resources, operator intervention
_TRANSIENT_CONFLICTS = ("40001", "40P01")  # serialization_failure, deadlock_detected


def is_transient_conflict(error: BaseException) -> bool:
    """True when running the same transaction again is expected to succeed."""
    return isinstance(error, psycopg.Error) and (error.sqlstate or "") in _TRANSIENT_CONFLICTS


def _is_unavailable(error: BaseException) -> bool:
    if isinstance(error, (psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, psycopg.OperationalError)):
        return True
    if isinstance(error, (pgerrors.QueryCanceled, pgerrors.LockNotAvailable)):
        return True  # statement_timeout / lock_timeout: the database is too busy to answer in time
    state = error.sqlstate if isinstance(error, psycopg.Error) else None
    return bool(state) and state is not None and state[:2] in _UNAVAILABLE_CLASSES


@contextmanager
def map_errors(on_connection_lost: Callable[[], None] | None = None) -> Iterator[None]:
    """Translate driver errors raised in the block into ``ServiceUnavailable``.

    ``on_connection_lost`` runs when the error suggests connections died (so the pool can be
    checked at once instead of handing out more dead connections). Core errors pass through.
    """
    try:
        yield
    except LooselyError:
        raise
    except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed, OSError) as error:
        if isinstance(error, (pgerrors.CharacterNotInRepertoire, pgerrors.UntranslatableCharacter)):
            # U+0000 in text or in a JSON string: valid input to SQLite, not storable in PostgreSQL.
            raise InvalidParameterValue(NUL_MESSAGE) from error
        if isinstance(error, OSError) or _is_unavailable(error) or is_transient_conflict(error):
            logger.warning("queue store unavailable: %s", error)
            if on_connection_lost is not None and not is_transient_conflict(error):
                on_connection_lost()
            raise ServiceUnavailable(UNAVAILABLE_MESSAGE) from error
        raise
