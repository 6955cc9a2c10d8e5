-- IG's start-up reconcile read every claim of its run to find the few in doubt (18 s for a run of
-- 314k claims): its cost grew with the run's history. The gate now records, as it goes, a mark
-- "every claim of this run claimed before T has a terminal receipt" (T never passes a claim still in
-- doubt nor a claim transaction still open), and reconcile reads only the claims from the latest
-- mark on, through the index below. Marks are facts about the past: append-only.
CREATE INDEX ig_admissions_run_claimed ON ig_admissions (platform_run_id, claimed_at);

CREATE TABLE ig_resolved_marks (
  platform_run_id text NOT NULL,
  resolved_before timestamptz NOT NULL,
  marked_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, resolved_before)
);
SELECT fp_make_append_only('ig_resolved_marks');
