"""SQS's documented limits, in one place so every rule reads its number from here."""

from __future__ import annotations

QUEUE_NAME_MAX = 80
FIFO_SUFFIX = ".fifo"

VISIBILITY_TIMEOUT_MAX_S = 43_200
DELAY_MAX_S = 900
WAIT_TIME_MAX_S = 20
MESSAGE_SIZE_MIN = 1_024
MESSAGE_SIZE_MAX = 1_048_576
RETENTION_MIN_S = 60
RETENTION_MAX_S = 1_209_600
KMS_REUSE_MIN_S = 60
KMS_REUSE_MAX_S = 86_400
MAX_RECEIVE_COUNT_MIN = 1
MAX_RECEIVE_COUNT_MAX = 1_000
REDRIVE_ALLOW_SOURCES_MAX = 10

DEFAULT_VISIBILITY_TIMEOUT_S = 30
DEFAULT_MAXIMUM_MESSAGE_SIZE = MESSAGE_SIZE_MAX
DEFAULT_RETENTION_S = 345_600
DEFAULT_KMS_REUSE_S = 300

MESSAGE_ATTRIBUTES_MAX = 10
ATTRIBUTE_NAME_MAX_BYTES = 255
ATTRIBUTE_TYPE_MAX_BYTES = 255

BATCH_ENTRIES_MAX = 10
BATCH_ENTRY_ID_MAX = 80
RECEIVE_MESSAGES_MAX = 10
FIFO_ID_MAX = 128

IN_FLIGHT_MAX = 120_000
"""Messages one queue may have in flight (received, not deleted, visibility not expired).

AWS: about 120,000 on a standard queue, where a short-poll receive past it fails with OverLimit
and a long poll returns nothing; 120,000 on a FIFO queue, which returns nothing without an error.
AWS raises it on request; a deployment may set its own (``QueueSettings.in_flight_max``)."""

LIST_QUEUES_MAX = 1_000
MOVE_TASKS_LIST_MAX = 10
MOVE_RATE_MAX = 500

TAGS_MAX = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256

PERMISSION_LABEL_MAX = 80
PERMISSION_ACTIONS_MAX = 7
