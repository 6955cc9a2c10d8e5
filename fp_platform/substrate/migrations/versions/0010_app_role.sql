-- Derived tables that only ever receive new facts (issue 20 asked per table): a label OFP applied, a
-- transaction and a card sighting as OFP saw them. Nothing rewrites them, so they are append-only like
-- the truth tables (the application role gets SELECT and INSERT on them, the triggers refuse the rest).
-- The tables the application may rewrite, and why, are `db.REWRITABLE` (docs/design.md lists them).
SELECT fp_make_append_only('ofp_labels');
SELECT fp_make_append_only('ofp_transactions');
SELECT fp_make_append_only('ofp_card_sightings');

-- No one but the owner creates objects in the platform's schema (PostgreSQL 15+ already revokes this
-- from PUBLIC on a new cluster; a database created earlier keeps the old default).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
