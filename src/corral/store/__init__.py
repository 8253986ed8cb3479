"""Persistence: SQLAlchemy 2 tables, Alembic migrations and repositories (SQLite by default, PostgreSQL too).

Why a layer of its own: the server keeps live state in memory and writes changes here; nothing above this package
writes SQL, and nothing here knows about HTTP or websockets. Only portable SQL: PostgreSQL must work unchanged.
"""
