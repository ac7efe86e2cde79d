"""The run store, the only part of grpo-lab that speaks SQL.

- ``db``: SQLModel tables, migrations, writes and reads (SQLAlchemy; any database URL).
- ``sqlite_read``: read-only checks and compare's query over SQLite files with the stdlib ``sqlite3``,
  so that commands which only read (compare) start without importing SQLAlchemy, SQLModel or pydantic.

This file imports neither, so importing ``grpo_lab.store.sqlite_read`` stays light.
"""
