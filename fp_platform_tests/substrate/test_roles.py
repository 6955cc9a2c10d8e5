"""The append-only law against the application itself (issue 20): the platform connects as a role that
is no superuser, owns nothing and holds SELECT/INSERT only on truth tables, so every bypass an owner
has (replication role, disabling or dropping a trigger, replacing its function) and every UPDATE,
DELETE and TRUNCATE is refused with a permission error; conformance fails when a trigger is disabled
or its function replaced."""

from __future__ import annotations

import psycopg
import pytest

from fp_platform.obs_gov import conformance
from fp_platform.substrate import db

TRUTH = db.declared_append_only()


def app_connection(h) -> psycopg.Connection:
    conn = db.connect(h, autocommit=True)
    assert (
        conn.execute("SELECT current_user").fetchone()[0]
        == db.conninfo(h)["user"]
        != db.conninfo(h, role=db.OWNER)["user"]
    )
    return conn


def first_column(conn: psycopg.Connection, table: str) -> str:
    return conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position LIMIT 1",
        (table,),
    ).fetchone()[0]


def test_the_app_role_is_no_superuser_and_owns_nothing(h, stack):
    with app_connection(h) as conn:
        assert db.app_role_problems(h, conn) == []
        (super_,) = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert super_ is False
    assert len(TRUTH) >= 30  # every truth table of every plane, not a sample


@pytest.mark.parametrize("table", TRUTH)
def test_every_bypass_is_refused_for_the_app_role(h, stack, table):
    column = None
    with app_connection(h) as conn:
        column = first_column(conn, table)
        statements = [
            "SET session_replication_role = replica",
            f"ALTER TABLE {table} DISABLE TRIGGER append_only_row",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            f"DROP TRIGGER append_only_row ON {table}",
            "CREATE OR REPLACE FUNCTION fp_refuse_mutation() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RETURN NEW; END; $$",
            "CREATE FUNCTION public.fp_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$",
            f"UPDATE {table} SET {column} = {column}",
            f"DELETE FROM {table}",
            f"TRUNCATE {table}",
            f"ALTER TABLE {table} OWNER TO CURRENT_USER",
        ]
        for sql in statements:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        assert conn.execute("SHOW session_replication_role").fetchone()[0] == "origin"
    with db.connect(h, role=db.OWNER) as owner:
        assert db.append_only_problems(owner, (table,)) == {}  # nothing above left a mark


@pytest.mark.parametrize(
    "tamper, expected",
    [
        ("ALTER TABLE ig_receipts DISABLE TRIGGER append_only_row", "ig_receipts: trigger append_only_row disabled"),
        (
            "ALTER TABLE ig_receipts ENABLE REPLICA TRIGGER append_only_truncate",
            "trigger append_only_truncate disabled",
        ),
        (
            "CREATE OR REPLACE FUNCTION fp_refuse_mutation() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RETURN NEW; END; $$",
            "differs from the shipped body",
        ),
        ("DROP TRIGGER append_only_row ON run_registry", "run_registry: trigger append_only_row missing"),
    ],
)
def test_conformance_fails_when_a_guard_is_tampered_with(h, stack, tamper, expected):
    """As the owner, inside a transaction that is rolled back: the tampering never outlives the test."""
    with db.connect(h, role=db.OWNER) as owner:
        assert conformance.append_only_enforced(owner).passed
        owner.execute(tamper)
        check = conformance.append_only_enforced(owner)
        owner.rollback()
        assert conformance.append_only_enforced(owner).passed
    assert not check.passed and expected in check.detail, check


def test_conformance_fails_when_the_app_role_gains_a_privilege_or_the_platform_connects_as_owner(h, stack):
    with db.connect(h, role=db.OWNER) as owner:
        owner.execute(f"GRANT UPDATE ON ig_receipts TO {db.conninfo(h)['user']}")
        widened = conformance.app_role_least_privilege(h, owner)
        owner.rollback()
        as_owner = conformance.app_role_least_privilege(h, owner)
    assert not widened.passed and "UPDATE ig_receipts" in widened.detail
    assert not as_owner.passed and "not the application role" in as_owner.detail
    with app_connection(h) as conn:
        assert conformance.app_role_least_privilege(h, conn).passed


def test_the_app_role_can_do_its_work(h, stack):
    """Privileges are least, not none: INSERT into truth, rewrite every projection, use temp tables."""
    with app_connection(h) as conn:
        conn.execute("CREATE TEMP TABLE scratch (x int) ON COMMIT DROP")
        conn.execute(
            "INSERT INTO run_registry (platform_run_id, profile, config_digest, run_json_uri)"
            " VALUES ('platform_19990101T000001Z', 'local', 'd', 's3://x') ON CONFLICT DO NOTHING"
        )
        for table in db.REWRITABLE:
            column = first_column(conn, table)
            conn.execute(f"UPDATE {table} SET {column} = {column} WHERE false")  # the privilege is checked
            conn.execute(f"DELETE FROM {table} WHERE false")
