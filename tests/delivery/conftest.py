"""Fixtures of the delivery tests.

They live in `delivery_support` with the helpers the tests import, under a module name of their own:
tests import helpers from there, never from ``conftest``, which names a different module in each folder.
"""

from delivery_support import signer, stack

__all__ = ["signer", "stack"]
