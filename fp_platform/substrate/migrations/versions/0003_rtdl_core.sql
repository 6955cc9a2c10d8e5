-- Worker checkpoints: the next offset each consumer group reads, written in the same transaction as
-- the state it produced (commit-after-write); the Kafka commit follows the DB commit.
CREATE TABLE worker_offsets (
  consumer_group   text NOT NULL,
  topic            text NOT NULL,
  kafka_partition  integer NOT NULL,
  next_offset      bigint NOT NULL CHECK (next_offset >= 0),
  applied          bigint NOT NULL DEFAULT 0,  -- records of the required run applied
  skipped          bigint NOT NULL DEFAULT 0,  -- records of other runs, checkpoint-skipped
  last_digest      text,  -- digest of the record at next_offset - 1: proves the checkpoint is of this log
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_group, topic, kafka_partition)
);

-- One row per worker: who runs it (pid, run scope) and its last heartbeat.
CREATE TABLE worker_heartbeats (
  component        text PRIMARY KEY,
  pack_id          text NOT NULL,
  platform_run_id  text NOT NULL,
  consumer_group   text NOT NULL,
  pid              integer NOT NULL,
  host             text NOT NULL,
  health_state     text NOT NULL CHECK (health_state IN ('GREEN', 'AMBER', 'RED', 'STOPPED')),
  counters         jsonb NOT NULL DEFAULT '{}',
  started_at       timestamptz NOT NULL,
  beat_at          timestamptz NOT NULL DEFAULT now()
);

-- The local supervisor's memory: restarts and backoff per worker.
CREATE TABLE supervision_state (
  component        text PRIMARY KEY,
  pack_id          text NOT NULL,
  platform_run_id  text NOT NULL,
  pid              integer,
  restarts         integer NOT NULL DEFAULT 0,
  last_start_at    timestamptz,
  last_exit        text,
  next_start_after timestamptz
);

-- ArchiveWriter manifest: one row per write-once parquet segment. Append-only.
CREATE TABLE archive_segments (
  platform_run_id  text NOT NULL,
  topic            text NOT NULL,
  kafka_partition  integer NOT NULL,
  first_offset     bigint NOT NULL,
  last_offset      bigint NOT NULL,
  records          integer NOT NULL,
  object_key       text NOT NULL,
  sha256           text NOT NULL,
  bytes            bigint NOT NULL,
  written_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, topic, kafka_partition, first_offset)
);
SELECT fp_make_append_only('archive_segments');

-- IEG: entities and edges with first/last seen (event time) and the origin of the first sighting.
CREATE TABLE ieg_entities (
  platform_run_id  text NOT NULL,
  entity_type      text NOT NULL,
  entity_id        text NOT NULL,
  first_seen       timestamptz NOT NULL,
  last_seen        timestamptz NOT NULL,
  sightings        bigint NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  PRIMARY KEY (platform_run_id, entity_type, entity_id)
);
CREATE TABLE ieg_edges (
  platform_run_id  text NOT NULL,
  src_type         text NOT NULL,
  src_id           text NOT NULL,
  dst_type         text NOT NULL,
  dst_id           text NOT NULL,
  first_seen       timestamptz NOT NULL,
  last_seen        timestamptz NOT NULL,
  sightings        bigint NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  PRIMARY KEY (platform_run_id, src_type, src_id, dst_type, dst_id)
);
CREATE INDEX ieg_edges_reverse ON ieg_edges (platform_run_id, dst_type, dst_id, src_type);

-- OFP: the traffic it has seen, card sightings (context), labels, and one feature vector per event.
CREATE TABLE ofp_transactions (
  platform_run_id  text NOT NULL,
  event_id         text NOT NULL,
  transaction_id   bigint NOT NULL,
  flow_id          text NOT NULL,
  customer_id      text NOT NULL,
  terminal_id      bigint NOT NULL,
  amount           double precision NOT NULL,
  ts               timestamptz NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  PRIMARY KEY (platform_run_id, event_id)
);
CREATE INDEX ofp_transactions_customer ON ofp_transactions (platform_run_id, customer_id, ts);
CREATE INDEX ofp_transactions_terminal ON ofp_transactions (platform_run_id, terminal_id, ts);
CREATE INDEX ofp_transactions_flow ON ofp_transactions (platform_run_id, flow_id);
CREATE INDEX ofp_transactions_tx ON ofp_transactions (platform_run_id, transaction_id);

CREATE TABLE ofp_card_sightings (
  platform_run_id  text NOT NULL,
  flow_id          text NOT NULL,
  card_id          text NOT NULL,
  device_id        text NOT NULL,
  ip               text NOT NULL,
  ts               timestamptz NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  PRIMARY KEY (platform_run_id, flow_id)
);
CREATE INDEX ofp_sightings_device ON ofp_card_sightings (platform_run_id, card_id, device_id, ts);
CREATE INDEX ofp_sightings_ip ON ofp_card_sightings (platform_run_id, card_id, ip, ts);

-- Label assertions OFP may use for terminal risk (only those observed by the event time).
CREATE TABLE ofp_labels (
  platform_run_id  text NOT NULL,
  transaction_id   bigint NOT NULL,
  is_fraud         boolean NOT NULL,
  effective_at     timestamptz NOT NULL,
  observed_at      timestamptz NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  PRIMARY KEY (platform_run_id, transaction_id, observed_at)
);

-- The feature vector of each traffic event (a derived projection: late data recomputes it, revision + 1).
CREATE TABLE ofp_features (
  platform_run_id  text NOT NULL,
  event_id         text NOT NULL,
  feature_version  text NOT NULL,
  features         jsonb NOT NULL,
  revision         integer NOT NULL DEFAULT 1,
  event_ts         timestamptz NOT NULL,
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  computed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (platform_run_id, event_id)
);

-- CSFB: one join frame per flow (arrival event, arrival entities, flow anchor), each part with its origin.
CREATE TABLE csfb_join_frames (
  platform_run_id   text NOT NULL,
  flow_id           text NOT NULL,
  arrival_event_id  text,
  arrival_ts        timestamptz,
  channel           text,
  arrival_origin    jsonb,
  entities_event_id text,
  entities_ts       timestamptz,
  card_id           text,
  device_id         text,
  ip                text,
  entities_origin   jsonb,
  anchor_event_id   text,
  anchor_ts         timestamptz,
  transaction_id    bigint,
  anchor_origin     jsonb,
  PRIMARY KEY (platform_run_id, flow_id)
);

-- FlowBinding index: each traffic event's flow and its binding status (derived from the frame).
CREATE TABLE csfb_flow_bindings (
  platform_run_id  text NOT NULL,
  event_id         text NOT NULL,
  flow_id          text NOT NULL,
  transaction_id   bigint NOT NULL,
  event_ts         timestamptz NOT NULL,
  status           text NOT NULL CHECK (status IN ('READY', 'MISSING_CONTEXT', 'LATE_CONTEXT')),
  reasons          text[] NOT NULL DEFAULT '{}',
  origin_topic     text NOT NULL,
  origin_partition integer NOT NULL,
  origin_offset    bigint NOT NULL,
  PRIMARY KEY (platform_run_id, event_id)
);
CREATE INDEX csfb_bindings_flow ON csfb_flow_bindings (platform_run_id, flow_id);
CREATE INDEX csfb_bindings_tx ON csfb_flow_bindings (platform_run_id, transaction_id);
