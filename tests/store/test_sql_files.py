"""The SQLite store's statements as package files (store/sql/*.sql): found, whole, valid SQL."""

from __future__ import annotations

import inspect
import re
import sqlite3
from pathlib import Path

import pytest

from hauler.store import sqlite as sqlite_store
from hauler.store import sqlite_db
from hauler.store.sqlite_queries import parse, queries, query


def test_parse_keeps_each_named_statement_without_its_comments() -> None:
    text = "-- header\n\n-- name: one\nSELECT 1\n-- about two\n-- name: two\nSELECT\n  2\n"
    assert parse("f", text) == {"f.one": "SELECT 1", "f.two": "SELECT\n  2"}


def test_every_statement_sqlite_py_names_is_in_the_files() -> None:
    named = set(re.findall(r'query\("([a-z_]+\.[a-z_]+)"\)', inspect.getsource(sqlite_store)))
    assert len(named) >= 20 and named <= set(queries())
    with pytest.raises(KeyError):
        query("claim.nothing")


def _bindings(sql: str) -> dict[str, None] | tuple[None, ...]:
    names = re.findall(r":([a-z_]+)", sql)
    return dict.fromkeys(names) if names else (None,) * sql.count("?")


def test_each_statement_is_one_statement_that_sqlite_compiles(tmp_path: Path) -> None:
    conn = sqlite_db.connect(tmp_path / "state.db", 1.0)  # migrated to the newest schema
    try:
        for name, sql in queries().items():
            text = sql.format(where="state = :state", select="SELECT id FROM jobs")
            assert ";" not in text and sqlite3.complete_statement(text + ";"), name
            conn.execute(f"EXPLAIN {text}", _bindings(text))  # compiles, runs nothing
    finally:
        conn.close()
