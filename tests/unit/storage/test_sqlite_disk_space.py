"""The free-disk-space watermark of the SQLite store (storage.sqlite.diskspace), with fake readings."""

from __future__ import annotations

import os

import pytest

from loosely.core.errors import ServiceUnavailable
from loosely.storage.sqlite.diskspace import CHECK_EVERY_S, DiskSpace

MIB = 1024 * 1024


class Readings:
    """Fake free space on disk and in the database, a fake clock, and how often each was read."""

    def __init__(self) -> None:
        self.disk = 100 * MIB
        self.database = 0
        self.now = 1_000.0
        self.disk_reads = 0
        self.database_reads = 0

    def statvfs(self, _path: str) -> os.statvfs_result:
        self.disk_reads += 1
        # f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_flag, f_namemax
        return os.statvfs_result((4096, 1024, 0, 0, self.disk // 1024, 0, 0, 0, 0, 255))

    async def free_in_database(self) -> int:
        self.database_reads += 1
        return self.database

    def space(self, limit: int = 50 * MIB) -> DiskSpace:
        return DiskSpace("/data", limit, self.free_in_database, statvfs=self.statvfs, monotonic=lambda: self.now)


@pytest.fixture
def readings() -> Readings:
    return Readings()


async def test_enough_space_admits_without_reading_the_database(readings: Readings) -> None:
    space = readings.space()
    await space.admit(0)
    assert not space.low
    assert (readings.disk_reads, readings.database_reads) == (1, 0)


async def test_under_the_limit_new_data_is_refused_as_service_unavailable(readings: Readings) -> None:
    space = readings.space()
    readings.disk = 50 * MIB - 1
    with pytest.raises(ServiceUnavailable, match="less than 50 MiB of disk space is free"):
        await space.admit(0)
    assert space.low


async def test_free_pages_of_the_database_count_as_free_space(readings: Readings) -> None:
    # A drained queue leaves free pages that new messages reuse: the file need not shrink first.
    space = readings.space()
    readings.disk, readings.database = 30 * MIB, 20 * MIB
    await space.admit(0)
    assert readings.database_reads == 1
    assert not space.low


async def test_a_reading_stands_for_a_second(readings: Readings) -> None:
    space = readings.space()
    await space.admit(0)
    readings.disk = 0
    readings.now += CHECK_EVERY_S - 0.001
    await space.admit(0)  # the earlier reading still stands
    assert readings.disk_reads == 1

    readings.now += 0.001
    with pytest.raises(ServiceUnavailable):
        await space.admit(0)
    readings.disk = 60 * MIB
    with pytest.raises(ServiceUnavailable):
        await space.admit(0)  # still the low reading, without reading again
    assert readings.disk_reads == 2

    readings.now += CHECK_EVERY_S
    await space.admit(0)
    assert not space.low


async def test_a_limit_of_zero_never_reads_or_refuses(readings: Readings) -> None:
    readings.disk = 0
    space = readings.space(limit=0)
    await space.admit(0)
    assert readings.disk_reads == 0


async def test_an_unreadable_directory_does_not_refuse(readings: Readings) -> None:
    def gone(_path: str) -> os.statvfs_result:
        raise FileNotFoundError("gone")

    space = DiskSpace("/data", 50 * MIB, readings.free_in_database, statvfs=gone, monotonic=lambda: readings.now)
    await space.admit(0)
    assert not space.low


async def test_writes_adding_up_to_a_quarter_of_the_limit_read_again_at_once(readings: Readings) -> None:
    # A burst of large sends must not spend the whole margin within one reading's second.
    space = readings.space(limit=40 * MIB)
    await space.admit(0)
    readings.disk = 0
    await space.admit(10 * MIB - 1)  # under a quarter since the last reading: that reading stands
    assert readings.disk_reads == 1
    with pytest.raises(ServiceUnavailable):
        await space.admit(1)
    assert readings.disk_reads == 2


async def test_admitting_at_once_needs_a_fresh_reading_that_was_not_low(readings: Readings) -> None:
    space = readings.space(limit=40 * MIB)
    assert not space.admit_at_once(1)  # no reading yet
    await space.admit(1)
    assert space.admit_at_once(1_000)
    assert not space.admit_at_once(10 * MIB)  # a quarter of the limit since the reading: read again
    readings.now += CHECK_EVERY_S
    assert not space.admit_at_once(1)
    readings.disk = 0
    with pytest.raises(ServiceUnavailable):
        await space.admit(1)
    assert not space.admit_at_once(1)
    assert readings.space(limit=0).admit_at_once(10**12)
