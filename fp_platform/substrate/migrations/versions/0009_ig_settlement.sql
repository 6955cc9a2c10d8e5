-- A claim whose record can never be published (larger than the broker accepts, refused as invalid)
-- used to stay IN_DOUBT for ever and block every later reconcile. Reconcile now settles it with a
-- terminal receipt: decision QUARANTINE, source reconcile (nothing is deleted; the claim keeps the
-- exact record and the quarantine store a copy). At most one settlement per claim, and it is
-- found by key (the index), so health checks of single claims stay O(1).
CREATE UNIQUE INDEX ig_receipts_one_settlement ON ig_receipts (platform_run_id, event_class, event_id)
  WHERE decision = 'QUARANTINE' AND source = 'reconcile';

CREATE OR REPLACE VIEW ig_admission_state AS
SELECT a.platform_run_id, a.event_class, a.event_id, a.payload_hash, a.topic, a.claimed_at,
       r.kafka_partition, r.kafka_offset,
       CASE WHEN r.seq IS NOT NULL THEN 'ADMITTED'
            WHEN s.seq IS NOT NULL THEN 'SETTLED'
            ELSE 'IN_DOUBT' END AS state
FROM ig_admissions a
LEFT JOIN ig_receipts r ON r.platform_run_id = a.platform_run_id AND r.event_class = a.event_class
  AND r.event_id = a.event_id AND r.decision = 'ADMIT'
LEFT JOIN ig_receipts s ON s.platform_run_id = a.platform_run_id AND s.event_class = a.event_class
  AND s.event_id = a.event_id AND s.decision = 'QUARANTINE' AND s.source = 'reconcile';
