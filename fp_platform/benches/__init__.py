"""`fp-platform bench ...`: the benchmarks, each a plain module that drives the real platform and prints
one JSON line per metric (DESIGN.md §9, BENCHMARKS.md).

They sit above the planes and the runner (they start packs, stream worlds through IG and run whole
platform runs), so no plane imports them: `ingest` (IG admission), `rtdl` (core workers' throughput, and
the helpers that put a world's records straight onto the topics), `decision` (decision latency per hop),
`world` (the stream sort against DuckDB),
`learning` (P13/P14 model quality), `run` (a whole platform run).
"""
