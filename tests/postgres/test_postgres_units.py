"""Pure parts of the PostgreSQL store: the FIFO claim plan, names, options and migrations."""

from __future__ import annotations

import pytest

from loosely.storage.postgres import PostgresStore
from loosely.storage.postgres._fifo import Candidate, plan_fifo_claim
from loosely.storage.postgres._migrate import available_migrations
from loosely.storage.postgres._sql import Sql, channel_name, check_schema_name
from loosely.storage.postgres.backend import _with_defaults

NOW = 1_000


def c(group: str, row_id: int, visible: int = 0, expires: int = 10_000, receives: int = 0) -> Candidate:
    return Candidate(group, row_id, visible, expires, receives)


def test_plan_takes_consecutive_visible_prefix_per_group_in_order() -> None:
    rows = [c("A", 1), c("A", 2), c("A", 3, visible=NOW + 1), c("A", 4), c("B", 5), c("B", 6)]

    plan = plan_fifo_claim(rows, NOW, 10, None)

    assert plan.claim_ids == [1, 2, 5, 6]  # A stops at its delayed third message
    assert plan.touched_groups == ["A", "B"]
    assert not plan.short


def test_plan_stops_at_max_messages() -> None:
    plan = plan_fifo_claim([c("A", 1), c("A", 2), c("B", 3)], NOW, 2, None)

    assert plan.claim_ids == [1, 2]
    assert plan.touched_groups == ["A"]
    assert plan.seen_groups == ["A", "B"]


def test_plan_moves_dead_letters_and_continues_behind_them() -> None:
    rows = [c("A", 1, receives=3), c("A", 2, receives=0), c("B", 3, receives=5)]

    plan = plan_fifo_claim(rows, NOW, 10, 3)

    assert plan.move_ids == [1, 3]
    assert plan.claim_ids == [2]
    assert plan.short
    assert plan.touched_groups == ["A", "B"]


def test_plan_skips_expired_rows() -> None:
    plan = plan_fifo_claim([c("A", 1, expires=NOW), c("A", 2)], NOW, 10, None)

    assert plan.claim_ids == [2]
    assert plan.short


@pytest.mark.parametrize("name", ["loosely", "t_1", "_x", "a" * 55])
def test_schema_names_accepted(name: str) -> None:
    assert check_schema_name(name) == name
    assert len(channel_name(name)) <= 63  # PostgreSQL identifiers (channels) are cut at 63 bytes


@pytest.mark.parametrize("name", ["", "Upper", "1abc", "a-b", 'x"; DROP', "a" * 56])
def test_schema_names_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="schema must match"):
        check_schema_name(name)


def test_statements_are_schema_qualified() -> None:
    sql = Sql("tenant_a", "node-a")

    assert '"tenant_a".messages' in sql.claim_standard
    assert "{s}" not in sql.send_fifo and "{M}" not in sql.claim_ids


def test_unknown_options_and_bad_pool_sizes_are_refused() -> None:
    with pytest.raises(TypeError, match="synchronous"):
        PostgresStore("postgresql://localhost/x", synchronous=1)
    with pytest.raises(ValueError, match="pool_min"):
        PostgresStore("postgresql://localhost/x", pool_min=5, pool_max=2)


def test_conninfo_defaults_fill_gaps_but_keep_url_settings() -> None:
    conninfo = _with_defaults("postgresql://u@db.example:6543/app?connect_timeout=9")

    assert "connect_timeout=9" in conninfo
    assert "tcp_user_timeout=10000" in conninfo
    assert "port=6543" in conninfo


def test_migrations_are_numbered_without_gaps() -> None:
    migrations = available_migrations()

    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "init"
