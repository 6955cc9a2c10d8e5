-- DF records, with each decision, OFP's consumed offsets in the snapshot its feature vector was read
-- from ({topic: {partition: next_offset}}): OFS rebuilds the vector over exactly those records (P13).
ALTER TABLE df_decisions ADD COLUMN feature_watermark jsonb;
