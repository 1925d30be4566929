"""Storage backends implementing `loosely.core.ports` (SQLite embedded, PostgreSQL shared)."""
