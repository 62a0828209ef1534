"""Persistence: SQLAlchemy Core tables, engine set-up, queries and migrations."""
