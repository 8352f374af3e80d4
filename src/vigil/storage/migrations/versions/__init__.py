"""vigil's Alembic revisions, one per schema version (see :mod:`vigil.storage.migrations`)."""
