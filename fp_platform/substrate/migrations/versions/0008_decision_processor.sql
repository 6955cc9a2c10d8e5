-- The decision processor (CSFB -> OFP -> DL -> DF chained in one process) records, with each decision,
-- when its event was taken in from the bus and how long it was parked waiting for its flow's context:
-- with the traffic record's time on the bus, decided_at (now the moment of the decision, not of the
-- transaction) and the Kafka timestamp of the published decision, each hop of receipt -> on the bus ->
-- intake -> decided -> published is measured.
ALTER TABLE df_decisions ADD COLUMN bus_at timestamptz;  -- the traffic record's Kafka timestamp (IG's produce)
ALTER TABLE df_decisions ADD COLUMN intake_at timestamptz;
ALTER TABLE df_decisions ADD COLUMN parked_ms double precision;
