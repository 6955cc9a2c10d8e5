"""The gates of P3 ORACLE_READY, each declared once: name, meaning and predicate over the phase's evidence
document (what the engine, seal, stream-sort and checker jobs left in the oracle bucket and the evidence).
Dagster-free: the assets turn them into blocking checks; the unit tests judge them on documents of their own."""

from __future__ import annotations

from typing import Any

from fp_platform.contracts.gates import Gate, Judgement, none_listed

Doc = dict[str, Any]


def _inputs_present(d: Doc) -> Judgement:
    s, absent = d["snapshot"], d["absent"]
    return (
        s["object_count"] > 0 and not absent,
        f"{s['object_count']} objects, {s['uploaded']} uploaded, {s['skipped']} already present"
        + (f"; absent: {absent[:5]}" if absent else ""),
        {"counts": s["counts"]},
    )


def _checker_pass(d: Doc) -> Judgement:
    failed = {o: r["problems"] for o, r in d["outputs"].items() if not r["passed"]}
    return (
        d["verdict"] == "PASS" and not failed,
        "; ".join(f"{o}: {' / '.join(p)}" for o, p in failed.items()) or f"{len(d['outputs'])} outputs PASS",
        {"outputs": {o: r["rows"] for o, r in d["outputs"].items()}},
    )


# doc = the seed snapshot + the relative paths whose stored sha256 differs (`absent`)
ENGINE_OUTPUTS = (
    Gate("oracle_inputs_present", "every engine file is in the oracle bucket with its sha256", _inputs_present),
)
# doc = the seal job's report + verify_pack's problems + the required outputs missing from the pack
ORACLE_PACK = (
    Gate(
        "pack_sealed",
        "the pack manifest is sealed and every sealed object is present with its size",
        none_listed("problems", lambda d: f"sealed {d['pack_fingerprint']}"),
    ),
    Gate(
        "required_outputs_sealed",
        "every required output is in the pack",
        lambda d: (not d["missing"], f"missing: {d['missing']}" if d["missing"] else "all present"),
    ),
)
# doc = whether the view's receipt is valid, and why
STREAM_VIEW = (
    Gate(
        "receipt_valid",
        "the receipt matches the sealed inputs and every shard it lists is present",
        lambda d: (d["receipt_valid"], d["why"]),
    ),
)
# doc = the checker's verdict file
ORACLE_CHECKER = (
    Gate(
        "checker_pass",
        "every required output: sealed input, shards, manifest, receipt, rows in order, counts equal",
        _checker_pass,
    ),
)
