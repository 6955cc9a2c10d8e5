-- How many records of a run each consumer group has applied (redeliveries included): the phase
-- assets wait on it (a worker's state, updated with its offsets in the batch's transaction).
CREATE TABLE worker_run_intake (
  consumer_group  text NOT NULL,
  platform_run_id text NOT NULL,
  applied         bigint NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, platform_run_id)
);

-- CaseTrigger: one trigger per case, case_id = hash(CaseSubjectKey); a redelivered audit event finds it here.
CREATE TABLE case_triggers (
  case_id          text PRIMARY KEY,
  platform_run_id  text NOT NULL,
  subject          jsonb NOT NULL,
  trigger_event_id text NOT NULL,
  trigger_reason   text NOT NULL,
  decision_id      text NOT NULL,
  audit_event_id   text NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_triggers_run ON case_triggers (platform_run_id);
SELECT fp_make_append_only('case_triggers');

-- CM intake: every trigger delivery once (by its offset), and what it was: a new case, a duplicate of
-- one (same payload) or a conflict (same case, different payload: never applied).
CREATE TABLE cm_trigger_deliveries (
  platform_run_id  text NOT NULL,
  case_id          text NOT NULL,
  trigger_event_id text NOT NULL,
  payload_hash     text NOT NULL,
  outcome          text NOT NULL CHECK (outcome IN ('NEW', 'DUPLICATE', 'CONFLICT')),
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  received_at      timestamptz NOT NULL DEFAULT now(),
  -- a re-read offset is the same delivery; a recreated bus reuses offsets for other records
  PRIMARY KEY (platform_run_id, origin_topic, origin_partition, origin_offset, trigger_event_id)
);
CREATE INDEX cm_trigger_deliveries_case ON cm_trigger_deliveries (platform_run_id, case_id);
SELECT fp_make_append_only('cm_trigger_deliveries');

-- The case timeline: append-only events, each under an idempotency key; `at` is world time. Evidence
-- is attached by reference (audit event, decision, IG receipt ids), never by copying payloads.
CREATE TABLE cm_case_events (
  seq              bigserial PRIMARY KEY,
  platform_run_id  text NOT NULL,
  case_id          text NOT NULL,
  event_type       text NOT NULL
                   CHECK (event_type IN ('CASE_OPENED', 'EVIDENCE_ATTACHED', 'ASSIGNED', 'DISPOSITION', 'CLOSED')),
  idempotency_key  text NOT NULL UNIQUE,
  actor            text NOT NULL,
  at               timestamptz NOT NULL,
  detail           jsonb NOT NULL DEFAULT '{}',
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cm_case_events_case ON cm_case_events (platform_run_id, case_id, seq);
SELECT fp_make_append_only('cm_case_events');

-- The current case, derived from its timeline (never stored).
CREATE VIEW cm_cases AS
SELECT platform_run_id, case_id,
       min(at) FILTER (WHERE event_type = 'CASE_OPENED') AS opened_at,
       max(detail->>'event_id') FILTER (WHERE event_type = 'CASE_OPENED') AS event_id,
       max(detail->>'trigger_reason') FILTER (WHERE event_type = 'CASE_OPENED') AS trigger_reason,
       CASE WHEN bool_or(event_type = 'CLOSED') THEN 'CLOSED'
            WHEN bool_or(event_type = 'ASSIGNED') THEN 'ASSIGNED' ELSE 'OPEN' END AS status,
       max(detail->>'investigator') FILTER (WHERE event_type = 'ASSIGNED') AS assigned_to,
       max(detail->>'label') FILTER (WHERE event_type = 'DISPOSITION') AS disposition,
       max(at) FILTER (WHERE event_type = 'CLOSED') AS closed_at,
       count(*) FILTER (WHERE event_type = 'EVIDENCE_ATTACHED') AS evidence_refs,
       count(*) AS events
FROM cm_case_events GROUP BY platform_run_id, case_id;

-- LS writer boundary: who may assert labels from which source. Granted by migration only; the foreign
-- key below makes the database refuse an assertion from anyone else.
CREATE TABLE ls_writers (
  writer_id  text NOT NULL,
  source     text NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (writer_id, source)
);
INSERT INTO ls_writers (writer_id, source) VALUES ('case_management', 'INVESTIGATOR'),
                                                  ('label_simulation', 'CHARGEBACK');
SELECT fp_make_append_only('ls_writers');

-- Label assertions: append-only, keyed by LabelSubjectKey, idempotent on assertion_id. effective_at is
-- the transaction's time, observed_at the world time the platform learns the label (as-of queries use it).
CREATE TABLE ls_assertions (
  seq               bigserial PRIMARY KEY,
  assertion_id      text NOT NULL UNIQUE,
  platform_run_id   text NOT NULL,
  label_subject_key text NOT NULL,
  subject           jsonb NOT NULL,
  transaction_id    bigint NOT NULL,
  label             text NOT NULL CHECK (label IN ('FRAUD', 'LEGIT')),
  source            text NOT NULL,
  writer_id         text NOT NULL,
  effective_at      timestamptz NOT NULL,
  observed_at       timestamptz NOT NULL,
  case_id           text,
  origin_topic      text NOT NULL,
  origin_partition  integer NOT NULL,
  origin_offset     bigint NOT NULL,
  recorded_at       timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (writer_id, source) REFERENCES ls_writers (writer_id, source)
);
CREATE INDEX ls_assertions_subject ON ls_assertions (platform_run_id, label_subject_key, observed_at);
CREATE INDEX ls_assertions_observed ON ls_assertions (platform_run_id, observed_at);
SELECT fp_make_append_only('ls_assertions');

-- Writes the boundary refused (governance anomalies): who tried, what, why.
CREATE TABLE ls_refused_writes (
  seq               bigserial PRIMARY KEY,
  platform_run_id   text NOT NULL,
  writer_id         text NOT NULL,
  source            text NOT NULL,
  label_subject_key text NOT NULL,
  reason            text NOT NULL,
  attempted         jsonb NOT NULL,
  refused_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ls_refused_writes_run ON ls_refused_writes (platform_run_id);
SELECT fp_make_append_only('ls_refused_writes');

-- The label simulation (investigators and chargebacks): what it will do and when (world time), decided
-- once per audited transaction, and what it has done. The world clock is the latest audited event time.
CREATE TABLE label_sim_plan (
  plan_id          text PRIMARY KEY,
  platform_run_id  text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('INVESTIGATION', 'CHARGEBACK')),
  due_at           timestamptz NOT NULL,
  event_class      text NOT NULL,
  event_id         text NOT NULL,
  transaction_id   bigint NOT NULL,
  case_id          text,
  label            text NOT NULL,
  effective_at     timestamptz NOT NULL,
  detail           jsonb NOT NULL DEFAULT '{}',
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL
);
CREATE INDEX label_sim_plan_due ON label_sim_plan (platform_run_id, due_at, plan_id);
SELECT fp_make_append_only('label_sim_plan');

CREATE TABLE label_sim_done (
  plan_id         text PRIMARY KEY,
  platform_run_id text NOT NULL,
  outcome         text NOT NULL,
  done_at         timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('label_sim_done');

CREATE TABLE label_sim_clock (
  platform_run_id text PRIMARY KEY,
  world_clock     timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
