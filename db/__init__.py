"""Persistence: SQLAlchemy models, engine, migrations, sealed secrets, leases."""
