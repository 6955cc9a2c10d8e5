-- Ingestion Gate. The dedupe ledger holds one row per (platform_run_id, event_class, event_id): the
-- first claim wins and is never rewritten. A claim with no ADMIT receipt is "in doubt" (a crash or
-- an unknown delivery) until `ig reconcile` resolves it from the topic.
CREATE TABLE ig_admissions (
  platform_run_id text NOT NULL,
  event_class     text NOT NULL,
  event_id        text NOT NULL,
  payload_hash    text NOT NULL,
  topic           text NOT NULL,
  message_key     bytea,
  message         bytea NOT NULL,  -- the exact bus record, so reconcile can publish what was claimed
  claimed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, event_class, event_id)
);
SELECT fp_make_append_only('ig_admissions');

-- One receipt per attempt (source = ingest) or per resolution (source = reconcile). Append-only.
CREATE TABLE ig_receipts (
  seq              bigserial PRIMARY KEY,
  receipt_id       text NOT NULL UNIQUE,
  platform_run_id  text NOT NULL,
  event_class      text NOT NULL,
  event_id         text NOT NULL,
  payload_hash     text NOT NULL,
  decision         text NOT NULL CHECK (decision IN ('ADMIT', 'DUPLICATE', 'QUARANTINE', 'ANOMALY', 'PUBLISH_AMBIGUOUS')),
  reason           text,
  source           text NOT NULL CHECK (source IN ('ingest', 'reconcile')),
  topic            text,
  kafka_partition  integer,
  kafka_offset     bigint,
  producer         text,
  received_at      timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('ig_receipts');
-- The ingestion law in the schema: an event reaches the bus at most once.
CREATE UNIQUE INDEX ig_receipts_one_admit ON ig_receipts (platform_run_id, event_class, event_id)
  WHERE decision = 'ADMIT';
CREATE INDEX ig_receipts_run ON ig_receipts (platform_run_id, decision);

-- Requests refused before any event could be read (401, 400, 413, 429): receipted too.
CREATE TABLE ig_request_rejections (
  seq              bigserial PRIMARY KEY,
  required_run_id  text,
  http_status      integer NOT NULL,
  error            text NOT NULL,
  reason           text NOT NULL,
  body_bytes       bigint,
  body_sha256      text,
  received_at      timestamptz NOT NULL DEFAULT now()
);
SELECT fp_make_append_only('ig_request_rejections');

-- Quarantine index: where each refused payload is preserved (write-once object).
CREATE TABLE ig_quarantine (
  platform_run_id  text NOT NULL,
  event_class      text NOT NULL,
  event_id         text NOT NULL,
  payload_hash     text NOT NULL,
  decision         text NOT NULL,
  reason           text NOT NULL,
  object_uri       text NOT NULL,
  quarantined_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, event_class, event_id, payload_hash)
);
SELECT fp_make_append_only('ig_quarantine');

-- Receipts as write-once S3 segments: one object per run and seq range [first_seq, last_seq].
CREATE TABLE ig_receipt_segments (
  platform_run_id text NOT NULL,
  segment_id   bigint NOT NULL,
  first_seq    bigint NOT NULL,
  last_seq     bigint NOT NULL,
  row_count    integer NOT NULL,
  object_uri   text NOT NULL,
  sha256       text NOT NULL,
  written_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, segment_id)
);
SELECT fp_make_append_only('ig_receipt_segments');

-- Current state is a view: each claimed event and whether it is on the bus.
CREATE VIEW ig_admission_state AS
SELECT a.platform_run_id, a.event_class, a.event_id, a.payload_hash, a.topic, a.claimed_at,
       r.kafka_partition, r.kafka_offset,
       CASE WHEN r.seq IS NULL THEN 'IN_DOUBT' ELSE 'ADMITTED' END AS state
FROM ig_admissions a
LEFT JOIN ig_receipts r ON r.platform_run_id = a.platform_run_id AND r.event_class = a.event_class
  AND r.event_id = a.event_id AND r.decision = 'ADMIT';

-- Scenario Runner lease per equivalence key (a live conflicting holder fails closed) and the READY
-- publications (one per run and scenario, append-only).
CREATE TABLE sr_leases (
  lease_key        text PRIMARY KEY,
  platform_run_id  text NOT NULL,
  scenario_run_id  text NOT NULL,
  holder           text NOT NULL,
  expires_at       timestamptz NOT NULL
);
CREATE TABLE sr_ready_publications (
  platform_run_id  text NOT NULL,
  scenario_run_id  text NOT NULL,
  topic            text NOT NULL,
  kafka_partition  integer NOT NULL,
  kafka_offset     bigint NOT NULL,
  event_id         text NOT NULL,
  published_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, scenario_run_id)
);
SELECT fp_make_append_only('sr_ready_publications');

-- World Stream Producer: READYs consumed, and an append-only checkpoint log per stream session.
CREATE TABLE wsp_ready_consumed (
  platform_run_id  text NOT NULL,
  scenario_run_id  text NOT NULL,
  kafka_partition  integer NOT NULL,
  kafka_offset     bigint NOT NULL,
  consumed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, scenario_run_id)
);
SELECT fp_make_append_only('wsp_ready_consumed');
CREATE TABLE wsp_checkpoints (
  session_id       text NOT NULL,
  platform_run_id  text NOT NULL,
  stream_digest    text NOT NULL,
  position         bigint NOT NULL,
  complete         boolean NOT NULL DEFAULT false,
  written_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, position, complete)  -- the end-of-stream marker is its own row
);
SELECT fp_make_append_only('wsp_checkpoints');
