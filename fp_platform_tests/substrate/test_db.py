"""Schema migrations and the append-only law, enforced by Postgres itself."""

import psycopg
import pytest

from fp_platform.substrate import db


def test_schema_is_at_head(h, stack):
    assert db.current_revision(h) == db.head_revision()
    assert db.migrate(h) == db.head_revision()  # idempotent


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE run_registry SET config_digest = 'x'",
        "DELETE FROM run_registry",
        "TRUNCATE run_registry",
    ],
)
def test_run_registry_refuses_mutation(h, stack, statement):
    """The trigger, as the owner (the application role is refused earlier, by privileges: test_roles)."""
    with db.connect(h, role=db.OWNER) as conn:
        conn.execute(
            "INSERT INTO run_registry (platform_run_id, profile, config_digest, run_json_uri) "
            "VALUES ('platform_19990101T000000Z', 'local', 'd', 's3://x') ON CONFLICT DO NOTHING"
        )
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only table run_registry"):
            conn.execute(statement)
        conn.rollback()
        assert (
            conn.execute(
                "SELECT count(*) FROM run_registry WHERE platform_run_id = 'platform_19990101T000000Z'"
            ).fetchone()[0]
            == 1
        )


def test_append_only_tables_view_lists_guarded_tables(h, stack):
    with db.connect(h) as conn:
        names = {r[0] for r in conn.execute("SELECT table_name FROM append_only_tables")}
    assert "run_registry" in names


def test_sqlalchemy_urls_name_their_driver(h, stack):
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; Dagster's storage needs psycopg2."""
    from sqlalchemy.engine import make_url

    assert make_url(db.url(h, driver="psycopg2")).get_dialect().driver == "psycopg2"
    assert make_url(db.url(h)).get_dialect().driver == "psycopg"
