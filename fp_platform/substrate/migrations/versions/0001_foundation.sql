-- The append-only law, enforced by the database: any table guarded by fp_refuse_mutation()
-- refuses UPDATE, DELETE and TRUNCATE. "Current state" is always a view over appended rows.
CREATE FUNCTION fp_refuse_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Guard a table in one call: fp_make_append_only('schema.table').
CREATE FUNCTION fp_make_append_only(target regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE TRIGGER append_only_row BEFORE UPDATE OR DELETE ON %s '
                 'FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation()', target);
  EXECUTE format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION fp_refuse_mutation()', target);
END;
$$;

-- P1 RUN_PINNED: one row per platform_run_id, pinned once with its config digest.
CREATE TABLE run_registry (
  platform_run_id text PRIMARY KEY,
  profile         text NOT NULL,
  config_digest   text NOT NULL,
  run_json_uri    text NOT NULL,
  pinned_at       timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('run_registry');

-- Which tables the append-only law covers (conformance reads this).
CREATE VIEW append_only_tables AS
SELECT DISTINCT c.relname AS table_name
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = 'append_only_row' AND NOT t.tgisinternal;
