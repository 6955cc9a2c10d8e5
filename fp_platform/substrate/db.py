"""Postgres: connection strings per profile and schema migrations (alembic, plain SQL)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from fp_platform.handles import Handles
from fp_platform.substrate.secrets import get_secret

PG_DSN_ENV_VAR = "FP_PG_DSN"
_MIGRATIONS = Path(__file__).parent / "migrations"


def external_dsn() -> str | None:
    """An operator-supplied Postgres (`FP_PG_DSN`) replaces the embedded server."""
    return os.environ.get(PG_DSN_ENV_VAR) or None


def conninfo(h: Handles, database: str | None = None) -> dict[str, str]:
    """libpq parameters for `database` (default: the platform DB, handle DB_NAME)."""
    dbname = database or h.get("DB_NAME")
    if external := external_dsn():
        return {**conninfo_to_dict(external), "dbname": dbname}
    return {
        "host": str(h.values.get("DB_HOST") or get_secret(h, "SSM_DB_ENDPOINT_PATH")),
        "port": str(h.get("DB_PORT")),
        "user": get_secret(h, "SSM_DB_USER_PATH"),
        "password": get_secret(h, "SSM_DB_PASSWORD_PATH"),
        "dbname": dbname,
    }


def dsn(h: Handles, database: str | None = None) -> str:
    return make_conninfo(**conninfo(h, database))


def url(h: Handles, database: str | None = None, driver: str = "psycopg") -> str:
    """SQLAlchemy URL with an explicit driver: since SQLAlchemy 2.1 a bare `postgresql://` means
    psycopg 3, while dagster-postgres needs psycopg2 — so every URL names its driver."""
    from sqlalchemy.engine import URL

    info = conninfo(h, database)
    return URL.create(
        f"postgresql+{driver}",
        username=info.get("user"),
        password=info.get("password"),
        host=info.get("host"),
        port=int(info["port"]) if info.get("port") else None,
        database=info["dbname"],
    ).render_as_string(hide_password=False)


def connect(h: Handles, database: str | None = None, **kwargs) -> psycopg.Connection:
    return psycopg.connect(dsn(h, database), connect_timeout=10, **kwargs)


def ensure_databases(h: Handles) -> list[str]:
    """Create the platform, Dagster and MLflow databases when absent; returns those created."""
    created = []
    with connect(h, "postgres", autocommit=True) as conn:
        for key in ("DB_NAME", "DB_DAGSTER_NAME", "DB_MLFLOW_NAME"):
            name = h.values.get(key)  # null where a managed service keeps its own store
            if name and not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
                created.append(name)
    return created


def _alembic_config(h: Handles):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url(h).replace("%", "%%"))
    return cfg


def sql_migration(module_file: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """A migration module's `upgrade` (runs the `.sql` file beside it) and `downgrade` (refused: the platform's
    migrations are forward-only). Each revision is its SQL; the module only names it in alembic's chain."""

    def upgrade() -> None:
        from alembic import op

        op.execute(Path(module_file).with_suffix(".sql").read_text())

    def downgrade() -> None:
        raise RuntimeError("platform migrations are forward-only")

    return upgrade, downgrade


def migrate(h: Handles) -> str:
    """Upgrade the platform schema to head; returns the revision now applied."""
    from alembic import command

    command.upgrade(_alembic_config(h), "head")
    return current_revision(h) or ""


def current_revision(h: Handles) -> str | None:
    with connect(h) as conn:
        exists = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def stage(conn: psycopg.Connection, table: str, columns: str, rows) -> None:
    """COPY `rows` into a temp table dropped at commit, for set-based upserts (call inside a transaction).
    ANALYZE gives the planner its real size: without it a batch of 500 looks big enough for a hash
    join over the whole run's table, and every batch gets slower as the run grows."""
    conn.execute(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP")
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute(f"ANALYZE {table}")


def declared_append_only() -> tuple[str, ...]:
    """Every table a shipped migration makes append-only: what a live database must enforce."""
    return tuple(
        sorted(
            {
                m
                for f in (_MIGRATIONS / "versions").glob("*.sql")
                for m in re.findall(r"fp_make_append_only\('(\w+)'\)", f.read_text())
            }
        )
    )


def append_only(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, bool]:
    """Whether each table carries the append-only trigger (`fp_make_append_only`): the database refuses
    UPDATE/DELETE/TRUNCATE there, not a convention."""
    have = {
        t
        for (t,) in conn.execute(
            "SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgname = 'append_only_row'"
            " AND c.relname = ANY(%s)",
            (list(tables),),
        )
    }
    return {t: t in have for t in tables}


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def jsonb(value: Any) -> Jsonb:
    """A jsonb parameter serialised by orjson (binary COPY needs the wrapper: a str would be a JSON string)."""
    return Jsonb(value, dumps=_json_text)
