"""Alembic environment: the database URL comes from Stagegate's settings."""

from alembic import context
from sqlmodel import SQLModel

import app.tables  # noqa: F401  (fills SQLModel.metadata)
from app.db import engine_for

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = engine_for(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
