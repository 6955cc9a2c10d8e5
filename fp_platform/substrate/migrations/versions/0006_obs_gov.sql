-- Obs/Gov (P11): the governance log. Append-only in the database; the reporter exports it to
-- obs/governance/events.jsonl, which only ever grows. Appends take a transaction advisory lock so
-- that the order of seq is the order of commits (an export never misses an event committed later
-- under a lower seq).
CREATE TABLE gov_events (
  seq              bigserial PRIMARY KEY,
  event_id         text NOT NULL UNIQUE,  -- hash of what it records: collecting twice appends nothing
  platform_run_id  text NOT NULL,
  event_type       text NOT NULL,
  severity         text NOT NULL CHECK (severity IN ('INFO', 'WARN', 'ANOMALY')),
  component        text NOT NULL,
  detail           jsonb NOT NULL,
  occurred_at      timestamptz NOT NULL,
  appended_at      timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('gov_events');
CREATE INDEX gov_events_run ON gov_events (platform_run_id, seq);
