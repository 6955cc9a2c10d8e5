"""Postgres: connection strings per profile and role, schema migrations (alembic, plain SQL) and the grants.

Two roles (issue 20). The owner (`SSM_DB_USER_PATH`: the local bootstrap user, the RDS/Aurora master
on the cloud profiles) runs migrations and owns every object. The application role
(`SSM_DB_APP_USER_PATH`) is what the platform's code connects as: not a superuser, owns nothing, and
holds only the privileges `grant_app` gives it, SELECT and INSERT on every append-only table. So the
append-only law holds against the application itself: privileges refuse UPDATE/DELETE/TRUNCATE and
every DDL bypass (disable or drop a trigger, replace its function, `session_replication_role`) before
the triggers are even reached; the triggers still refuse the owner's ordinary statements.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
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
OWNER, APP = "owner", "app"
_CREDENTIALS = {
    OWNER: ("SSM_DB_USER_PATH", "SSM_DB_PASSWORD_PATH"),
    APP: ("SSM_DB_APP_USER_PATH", "SSM_DB_APP_PASSWORD_PATH"),
}

# Tables the application may rewrite (UPDATE/DELETE), each a projection or operational state whose
# truth lives elsewhere (the bus, an append-only table) and can be rebuilt from it; docs/design.md
# says why for each. Every other table is append-only (SELECT, INSERT) or read-only (SELECT).
REWRITABLE = {
    "ofp_features": "feature vectors: late data recomputes a vector (revision + 1) from the bus",
    "ieg_entities": "entity graph nodes: first/last seen and counts folded from the bus",
    "ieg_edges": "entity graph edges: counts and last seen folded from the bus",
    "csfb_flow_bindings": "a flow's binding moves from waiting to bound/degraded as its context arrives",
    "csfb_join_frames": "join frames are keyed state with a TTL, rebuilt from the context topics",
    "sr_leases": "a lease is renewed and expires; READY publications (append-only) are the record",
    "supervision_state": "the supervisor's view of live processes, rewritten as they start and stop",
    "worker_heartbeats": "last heartbeat per worker, overwritten by design",
    "worker_offsets": "consumer checkpoints move forward inside the state transaction",
    "worker_outbox_cursor": "how far the outbox (append-only) has been sent",
    "worker_run_intake": "per-run intake marks of a worker, moved forward",
    "label_sim_clock": "the label simulation's world clock, moved forward",
}
READ_ONLY = {"alembic_version"}  # the application reads the schema revision, never writes it


def external_dsn() -> str | None:
    """An operator-supplied Postgres (`FP_PG_DSN`) replaces the embedded server."""
    return os.environ.get(PG_DSN_ENV_VAR) or None


def conninfo(h: Handles, database: str | None = None, role: str = APP) -> dict[str, str]:
    """libpq parameters for `database` (default: the platform DB, handle DB_NAME) as `role` (APP unless a
    caller needs to own what it creates: migrations, Dagster's and MLflow's own stores)."""
    dbname = database or h.get("DB_NAME")
    user_key, password_key = _CREDENTIALS[role]
    # DB_SSL_MODE on every connection: `require` on the cloud profiles (RDS/Aurora), libpq's own default
    # (`prefer`) locally; P0 checks the session really is encrypted where the profile requires it
    tls = {"sslmode": str(h.get("DB_SSL_MODE"))}
    if external := external_dsn():  # the DSN is the owner's; the app role has its own credentials
        info = {**conninfo_to_dict(external), "dbname": dbname}
        if role == APP:
            info |= {"user": get_secret(h, user_key), "password": get_secret(h, password_key)}
        return {**tls, **info} if h.profile == "local" else {**info, **tls}  # a cloud DSN cannot weaken TLS
    return {
        "host": str(h.values.get("DB_HOST") or get_secret(h, "SSM_DB_ENDPOINT_PATH")),
        "port": str(h.get("DB_PORT")),
        "user": get_secret(h, user_key),
        "password": get_secret(h, password_key),
        "dbname": dbname,
        **tls,
    }


def dsn(h: Handles, database: str | None = None, role: str = APP) -> str:
    return make_conninfo(**conninfo(h, database, role))


def url(h: Handles, database: str | None = None, driver: str = "psycopg", role: str = APP) -> str:
    """SQLAlchemy URL with an explicit driver: since SQLAlchemy 2.1 a bare `postgresql://` means
    psycopg 3, while dagster-postgres needs psycopg2 — so every URL names its driver."""
    from sqlalchemy.engine import URL

    info = conninfo(h, database, role)
    return URL.create(
        f"postgresql+{driver}",
        username=info.get("user"),
        password=info.get("password"),
        host=info.get("host"),
        port=int(info["port"]) if info.get("port") else None,
        database=info["dbname"],
        query={"sslmode": info["sslmode"]},
    ).render_as_string(hide_password=False)


def connect(h: Handles, database: str | None = None, role: str = APP, **kwargs) -> psycopg.Connection:
    return psycopg.connect(dsn(h, database, role), connect_timeout=10, **kwargs)


class RoleSetupError(RuntimeError):
    """The owner cannot create or fix the application role; the message says what to do by hand."""


def ensure_app_role(h: Handles) -> str:
    """Create the application role when absent, else (re)assert its attributes and password; returns what
    was done. The role logs in and nothing else: no superuser, no CREATEDB/CREATEROLE, no replication,
    no bypass of row security."""
    user = get_secret(h, "SSM_DB_APP_USER_PATH")
    password = get_secret(h, "SSM_DB_APP_PASSWORD_PATH")
    attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"
    with connect(h, "postgres", role=OWNER, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        try:
            conn.execute(
                psycopg.sql.SQL(verb + " ROLE {} " + attrs + " PASSWORD {}").format(
                    psycopg.sql.Identifier(user), psycopg.sql.Literal(password)
                )
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            owner = conninfo(h, role=OWNER)["user"]
            raise RoleSetupError(
                f"the owner role {owner!r} cannot {verb.lower()} the application role {user!r} ({exc}); as an"
                f" administrator run: CREATE ROLE {user} {attrs} PASSWORD '<the {h.get('SSM_DB_APP_PASSWORD_PATH')}"
                " secret>', or give the owner CREATEROLE"
            ) from exc
    return f"{'updated' if exists else 'created'} application role {user}"


def grant_app(h: Handles) -> dict[str, list[str]]:
    """Privileges of the application role on the platform database, recomputed from the live schema (so a
    new migration's tables are covered): append-only tables SELECT, INSERT; REWRITABLE tables SELECT,
    INSERT, UPDATE, DELETE; everything else SELECT. Nothing else: no CREATE anywhere, no TRUNCATE,
    TRIGGER or REFERENCES, and every object stays the owner's. Returns the tables per class."""
    app = psycopg.sql.Identifier(get_secret(h, "SSM_DB_APP_USER_PATH"))
    classes: dict[str, list[str]] = {"append_only": [], "rewritable": [], "read_only": []}
    with connect(h, role=OWNER) as conn, conn.transaction():
        guarded = set(declared_append_only())  # what the migrations declare, whatever a live trigger says
        sql = psycopg.sql.SQL
        conn.execute(sql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(app))
        conn.execute(sql("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(app))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql("GRANT USAGE ON SCHEMA public TO {}").format(app))
        conn.execute(
            sql("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(psycopg.sql.Identifier(h.get("DB_NAME")), app)
        )
        for (name,) in conn.execute(_PUBLIC_TABLES).fetchall():
            if name in guarded:
                kind, privileges = "append_only", "SELECT, INSERT"
            elif name in REWRITABLE:
                kind, privileges = "rewritable", "SELECT, INSERT, UPDATE, DELETE"
            else:
                kind, privileges = "read_only", "SELECT"
            conn.execute(sql("GRANT " + privileges + " ON {} TO {}").format(psycopg.sql.Identifier(name), app))
            classes[kind].append(name)
        conn.execute(sql("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(app))
    return classes


_PUBLIC_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1"
)


def ensure_databases(h: Handles) -> list[str]:
    """Create the platform, Dagster and MLflow databases when absent; returns those created."""
    created = []
    with connect(h, "postgres", role=OWNER, autocommit=True) as conn:
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
    cfg.set_main_option("sqlalchemy.url", url(h, role=OWNER).replace("%", "%%"))
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
    """Upgrade the platform schema to head (as the owner) and grant the application role what it may do;
    returns the revision now applied."""
    from alembic import command

    command.upgrade(_alembic_config(h), "head")
    grant_app(h)
    return current_revision(h) or ""


def bootstrap(h: Handles) -> str:
    """What the owner does before the platform connects, the same on every profile (locally `stack up`; on
    dev_min the RDS master, in the migrations task: `fp-platform db migrate`): the application role with
    its password from SSM_DB_APP_PASSWORD_PATH (a local file, or the SSM SecureString Terraform demo
    writes), the databases, then the schema and the role's grants. Idempotent."""
    role = ensure_app_role(h)
    created = ensure_databases(h)
    revision = migrate(h)
    return f"schema {revision}; {role.split()[0]} app role" + (f"; created {', '.join(created)}" if created else "")


def current_revision(h: Handles) -> str | None:
    with connect(h, role=OWNER) as conn:
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


def copy_rows(
    conn: psycopg.Connection,
    table: str,
    columns: str | Sequence[str] | None,
    rows: Iterable[Sequence[Any]],
    types: Sequence[str] | None = None,
) -> None:
    """Append `rows` to `table` (its `columns`, or all) with one COPY: a batch is one round trip, not a
    statement per row. With `types`, the COPY is binary: bytes and JSON go as they are, not escaped."""
    names = columns if columns is None or isinstance(columns, str) else ", ".join(columns)
    target = table if names is None else f"{table} ({names})"
    with conn.cursor().copy(f"COPY {target} FROM STDIN" + (" (FORMAT BINARY)" if types else "")) as copy:
        if types:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def stage(conn: psycopg.Connection, table: str, columns: str, rows) -> None:
    """COPY `rows` into a temp table dropped at commit, for set-based upserts (call inside a transaction).
    ANALYZE gives the planner its real size: without it a batch of 500 looks big enough for a hash
    join over the whole run's table, and every batch gets slower as the run grows."""
    conn.execute(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP")
    copy_rows(conn, table, None, rows)
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


_GUARD_TRIGGERS = ("append_only_row", "append_only_truncate")
_GUARD_FUNCTION = "public.fp_refuse_mutation"


def shipped_guard_body() -> str:
    """The body of `fp_refuse_mutation` as the first migration ships it (whitespace-normalised)."""
    sql = (_MIGRATIONS / "versions" / "0001_foundation.sql").read_text()
    body = re.search(
        r"CREATE FUNCTION fp_refuse_mutation\(\) RETURNS trigger LANGUAGE plpgsql AS \$\$(.*?)\$\$", sql, re.S
    )
    if body is None:
        raise RuntimeError("0001_foundation.sql no longer defines fp_refuse_mutation")
    return " ".join(body.group(1).split())


def append_only_problems(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, str]:
    """Why each guarded table is not (fully) guarded; absent = guarded. Both triggers of `fp_make_append_only`
    must exist, fire in ordinary sessions (enabled `O` or `A`: disabled `D` and replica-only `R` do not) and
    call `fp_refuse_mutation` with the shipped body: a trigger's name alone proves nothing."""
    expected = shipped_guard_body()
    found: dict[str, dict[str, tuple[str, str, str]]] = {}
    for rel, trigger, enabled, function, source in conn.execute(
        "SELECT c.relname, g.tgname, g.tgenabled, n.nspname || '.' || p.proname, p.prosrc FROM pg_trigger g"
        " JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_proc p ON p.oid = g.tgfoid"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE NOT g.tgisinternal AND g.tgname = ANY(%s) AND c.relname = ANY(%s)",
        (list(_GUARD_TRIGGERS), list(tables)),
    ):
        found.setdefault(rel, {})[trigger] = (enabled, function, " ".join(source.split()))
    problems: dict[str, str] = {}
    for table in tables:
        for trigger in _GUARD_TRIGGERS:
            if trigger not in found.get(table, {}):
                problems[table] = f"trigger {trigger} missing"
                break
            enabled, function, source = found[table][trigger]
            if enabled not in ("O", "A"):
                problems[table] = f"trigger {trigger} disabled (tgenabled={enabled})"
                break
            if function != _GUARD_FUNCTION:
                problems[table] = f"trigger {trigger} calls {function}, not {_GUARD_FUNCTION}"
                break
            if source != expected:
                problems[table] = f"{_GUARD_FUNCTION} differs from the shipped body (replaced)"
                break
    return problems


def append_only(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, bool]:
    """Whether each table is guarded by working append-only triggers (`append_only_problems`): the database
    refuses UPDATE/DELETE/TRUNCATE there, not a convention."""
    problems = append_only_problems(conn, tables)
    return {t: t not in problems for t in tables}


def app_role_problems(h: Handles, conn: psycopg.Connection) -> list[str]:
    """Where the application role has more than `grant_app` gives it (empty = least privilege holds)."""
    user = get_secret(h, "SSM_DB_APP_USER_PATH")
    row = conn.execute(
        "SELECT oid, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles"
        " WHERE rolname = %s",
        (user,),
    ).fetchone()
    if row is None:
        return [f"application role {user!r} does not exist"]
    oid, *powers = row
    problems = [
        f"{user} has {name}"
        for name, held in zip(("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS"), powers, strict=True)
        if held
    ]
    owned = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relowner = %s"
        " AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'",
        (oid,),
    ).fetchone()[0]
    owned += conn.execute(
        "SELECT (SELECT count(*) FROM pg_proc WHERE proowner = %s)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = %s AND nspname NOT LIKE 'pg_temp%%'"
        " AND nspname NOT LIKE 'pg_toast_temp%%')",
        (oid, oid),
    ).fetchone()[0]
    if owned:
        problems.append(f"{user} owns {owned} objects")
    tables = declared_append_only()
    mutating = conn.execute(
        "SELECT t, p FROM unnest(%s::text[]) t, unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER']) p"
        " WHERE to_regclass(t) IS NOT NULL AND has_table_privilege(%s, t, p)",
        (list(tables), user),
    ).fetchall()
    if mutating:
        problems.append(
            f"{user} may {', '.join(f'{p} {t}' for t, p in mutating[:5])}" + (" …" if len(mutating) > 5 else "")
        )
    if conn.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (user,)).fetchone()[0]:
        problems.append(f"{user} may CREATE in schema public")
    if conn.execute("SELECT has_parameter_privilege(%s, 'session_replication_role', 'SET')", (user,)).fetchone()[0]:
        problems.append(f"{user} may SET session_replication_role")
    return problems


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def jsonb(value: Any) -> Jsonb:
    """A jsonb parameter serialised by orjson (binary COPY needs the wrapper: a str would be a JSON string)."""
    return Jsonb(value, dumps=_json_text)
