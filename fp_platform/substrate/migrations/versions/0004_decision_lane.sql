-- Worker outbox: what a worker publishes is written in its batch's transaction, then sent; the cursor
-- moves only after the broker acknowledged. A crash in between sends the same bytes again (consumers
-- dedupe on the record's id); nothing decided is ever lost between the DB and the bus.
CREATE TABLE worker_outbox (
  consumer_group   text NOT NULL,
  seq              bigserial,
  topic            text NOT NULL,
  record_key       bytea,
  headers          jsonb NOT NULL,
  value            bytea NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, seq)
);
SELECT fp_make_append_only('worker_outbox');
CREATE TABLE worker_outbox_cursor (
  consumer_group   text PRIMARY KEY,
  sent_seq         bigint NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- MPR registry (DF reads it): bundles, and the append-only events that activate them.
CREATE TABLE mpr_bundles (
  bundle_id        text NOT NULL,
  bundle_version   text NOT NULL,
  policy_rev       text NOT NULL,
  model_ref        text,  -- NULL: a rules-only bundle
  feature_version  text NOT NULL,
  feature_list     text[] NOT NULL,
  thresholds       jsonb NOT NULL,
  provenance       jsonb NOT NULL DEFAULT '{}',
  registered_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (bundle_id, bundle_version)
);
SELECT fp_make_append_only('mpr_bundles');
CREATE TABLE mpr_registry_events (
  seq              bigserial PRIMARY KEY,
  event_id         text NOT NULL UNIQUE,
  event_type       text NOT NULL CHECK (event_type IN ('BOOTSTRAP', 'PROMOTED', 'ROLLED_BACK', 'ROLLED_FORWARD')),
  bundle_id        text NOT NULL,
  bundle_version   text NOT NULL,
  reason           text NOT NULL,
  actor            text NOT NULL,
  at               timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (bundle_id, bundle_version) REFERENCES mpr_bundles
);
SELECT fp_make_append_only('mpr_registry_events');

-- DL: posture changes, append-only; the current posture is the run's latest row.
CREATE TABLE dl_posture_events (
  seq              bigserial PRIMARY KEY,
  platform_run_id  text NOT NULL,
  posture          text NOT NULL CHECK (posture IN ('NORMAL', 'DEGRADED_CONTEXT', 'RULES_ONLY', 'FAIL_CLOSED')),
  previous_posture text,
  reasons          text[] NOT NULL,
  signals          jsonb NOT NULL,
  policy_rev       text NOT NULL,
  origin_topic     text,  -- the last traffic record the signals were measured up to (none at start-up)
  origin_partition integer,
  origin_offset    bigint,
  at               timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('dl_posture_events');
CREATE INDEX dl_posture_run ON dl_posture_events (platform_run_id, seq);

-- DF: one decision per admitted traffic event (decision_id = hash(run, event_id)), with what it was
-- decided on. The published envelopes are kept so a replay re-sends the same bytes. Append-only.
CREATE TABLE df_decisions (
  decision_id      text PRIMARY KEY,
  platform_run_id  text NOT NULL,
  event_id         text NOT NULL,
  decision         text NOT NULL CHECK (decision IN ('APPROVE', 'STEP_UP', 'REVIEW', 'DECLINE')),
  reason_codes     text[] NOT NULL,
  score            double precision NOT NULL,
  score_source     text NOT NULL,
  bundle_id        text NOT NULL,
  bundle_version   text NOT NULL,
  policy_rev       text NOT NULL,
  posture          text NOT NULL,
  posture_seq      bigint,
  degrade_reasons  text[] NOT NULL,
  binding_status   text,
  feature_version  text,
  features         jsonb,
  event_ts         timestamptz NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  decision_envelope bytea NOT NULL,
  intent_envelope  bytea NOT NULL,
  decided_at       timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('df_decisions');
CREATE UNIQUE INDEX df_decisions_event ON df_decisions (platform_run_id, event_id);

-- AL: one outcome per action_id (the idempotency key), and every intent delivery it took in.
CREATE TABLE al_outcomes (
  action_id        text PRIMARY KEY,
  platform_run_id  text NOT NULL,
  decision_id      text NOT NULL,
  action_kind      text NOT NULL,
  effect           text NOT NULL,
  outcome_id       text NOT NULL UNIQUE,
  status           text NOT NULL CHECK (status IN ('EXECUTED', 'FAILED')),
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  executed_at      timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('al_outcomes');
CREATE INDEX al_outcomes_run ON al_outcomes (platform_run_id);
CREATE TABLE al_intake (
  platform_run_id  text NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  action_id        text NOT NULL,
  duplicate        boolean NOT NULL,  -- an intent for an action already executed: prevented, not acted
  received_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, origin_topic, origin_partition, origin_offset)
);
SELECT fp_make_append_only('al_intake');

-- DLA: every rtdl record of the run once (decision, intent, outcome), the chains it closed, the
-- deliveries it had seen already, and its write-once S3 segments. All append-only.
CREATE TABLE dla_audit_records (
  platform_run_id  text NOT NULL,
  event_class      text NOT NULL,
  event_id         text NOT NULL,
  decision_id      text NOT NULL,
  payload_hash     text NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  record           jsonb NOT NULL,
  appended_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, event_class, event_id)
);
SELECT fp_make_append_only('dla_audit_records');
CREATE INDEX dla_audit_decision ON dla_audit_records (platform_run_id, decision_id);
CREATE TABLE dla_redeliveries (
  platform_run_id  text NOT NULL,
  event_class      text NOT NULL,
  event_id         text NOT NULL,
  same_payload     boolean NOT NULL,  -- false: a conflicting record under an id already audited (anomaly)
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  PRIMARY KEY (platform_run_id, origin_topic, origin_partition, origin_offset)
);
SELECT fp_make_append_only('dla_redeliveries');
CREATE TABLE dla_chains (
  decision_id      text PRIMARY KEY,
  platform_run_id  text NOT NULL,
  event_id         text NOT NULL,
  receipt_id       text NOT NULL,
  decision         text NOT NULL,
  action_id        text NOT NULL,
  outcome_id       text NOT NULL,
  posture          text NOT NULL,
  degraded         boolean NOT NULL,
  lineage          jsonb NOT NULL,  -- origin offsets: admitted event, decision, intent, outcome
  closed_at        timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('dla_chains');
CREATE INDEX dla_chains_run ON dla_chains (platform_run_id);
CREATE TABLE dla_audit_segments (
  platform_run_id  text NOT NULL,
  segment_id       text NOT NULL,
  records          integer NOT NULL,
  object_key       text NOT NULL,
  sha256           text NOT NULL,
  bytes            bigint NOT NULL,
  written_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, segment_id)
);
SELECT fp_make_append_only('dla_audit_segments');
