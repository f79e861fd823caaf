"""Storage: SQLAlchemy tables, repositories and Alembic migrations, on SQLite or PostgreSQL.

Only this package imports SQLAlchemy and the database drivers.
"""
