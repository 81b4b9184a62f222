"""Alembic migrations of the service schema, shipped inside the package and run at start-up."""
