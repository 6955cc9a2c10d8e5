"""Every declared gate judged on documents of the test's own, without the stack: a document that passes them
all, and for each gate a change to it that fails that gate (and only the gates named with it, where gates
overlap by design) — so a gate whose predicate were inverted, or that could not fail, fails here."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fp_platform.case_labels import gates as case_gates
from fp_platform.contracts.gates import Gate, judge
from fp_platform.control import gates as control_gates
from fp_platform.learning import gates as learning_gates
from fp_platform.obs_gov import gates as obs_gates
from fp_platform.operate import gates as operate_gates
from fp_platform.rtdl import gates as rtdl_gates
from fp_platform.world import gates as world_gates

Doc = dict[str, Any]


def _p8() -> Doc:
    part = {"topic": "fp.bus.traffic.fraud.v1", "partition": 0, "lag": 0}
    return {
        "report": {
            "workers": {"archive_writer": {"max_lag": 0, "partitions": [part]}},
            "max_lag": 0,
            "partitions_covered": 1,
        },
        "lag_max_allowed": 0,
        "waited_s": 1.0,
        "admitted_partitions": 1,
        "kafka_ahead_of_db": [],
        "closure": {"closed": True, "coverage_problems": [], "segment_count": 2, "records": 10, "orphan_segments": []},
        "closure_problem": None,
        "workers": 3,
        "unhealthy": [],
        "coverage": {"complete": True, "traffic_admitted": 5, "ofp_features": 5, "csfb_flow_bindings": 5},
        "degrades": {
            "csfb_degrades_without_reason": 0,
            "csfb_bindings": {"READY": 5},
            "ofp_context_incomplete": 0,
            "ofp_risk_without_labels": 0,
        },
    }


def _lagging(d: Doc) -> None:
    d["report"]["workers"]["archive_writer"]["partitions"][0]["lag"] = 1


P8_FAILS: dict[str, Callable[[Doc], None]] = {
    "workers_healthy": lambda d: d["unhealthy"].append("ieg: RED"),
    "commit_after_write": lambda d: d["kafka_ahead_of_db"].append("ieg traffic[0] 9 > 8"),
    "caught_up": _lagging,
    "origin_offsets_complete": lambda d: d["coverage"].update(complete=False),
    "archive_closed": lambda d: d.update(closure_problem="closure marker holds another manifest"),
    "degrades_recorded": lambda d: d["degrades"].update(csfb_degrades_without_reason=1),
}


def _decisions() -> Doc:
    return {
        "decisions": 5,
        "admitted_traffic": 5,
        "decisions_not_admitted": 0,
        "by_decision": {"APPROVE": 5},
        "degraded": 1,
        "degraded_without_reason": 0,
        "degrade_reason_counts": {"posture": 1},
        "posture_events": [{"seq": 1, "posture": "NORMAL", "reasons": ["all signals within policy"]}],
        "by_posture": {"NORMAL": 5},
        "waited_s": 1.0,
        "unhealthy": [],
    }


DECISION_FAILS = {
    "decisions_cover_traffic": lambda d: d.update(decisions_not_admitted=1),
    "degrade_explicit": lambda d: d.update(degraded_without_reason=1),
    "postures_recorded": lambda d: d["posture_events"][0].update(reasons=[]),
    "df_dl_green": lambda d: d["unhealthy"].append("decision_fabric: stale"),
}


def _actions() -> Doc:
    return {
        "intents_emitted": 5,
        "intents": 5,
        "outcomes": 5,
        "by_action": {"APPROVE": 5},
        "intent_deliveries": 7,
        "duplicates_prevented": 2,
        "decisions_acted_twice": 0,
        "waited_s": 1.0,
        "unhealthy": [],
    }


ACTION_FAILS = {
    "intents_equal_outcomes": lambda d: d.update(outcomes=4),
    "duplicates_prevented": lambda d: d.update(decisions_acted_twice=1),
    "al_green": lambda d: d["unhealthy"].append("action_layer: RED"),
}


def _audit() -> Doc:
    return {
        "chains": 5,
        "decisions": 5,
        "lineage_unresolved_total": 0,
        "audit_records": 15,
        "redeliveries": 2,
        "segments": 3,
        "segment_records": 17,
        "segments_missing_on_s3": [],
        "audit_events_unsent": 0,
        "append_only_tables": {"dla_audit_records": True, "dla_chains": True},
        "waited_s": 1.0,
        "unhealthy": [],
    }


AUDIT_FAILS = {
    "one_chain_per_decision": lambda d: d.update(chains=4),
    "lineage_resolved": lambda d: d.update(lineage_unresolved_total=1),
    "audit_durable": lambda d: d.update(audit_events_unsent=1),
    "audit_append_only": lambda d: d["append_only_tables"].update(dla_chains=False),
    "dla_green": lambda d: d["unhealthy"].append("decision_log_audit: RED"),
}


def _cases() -> Doc:
    return {
        "plane_caught_up": True,
        "caught_up": "clock at the last decision",
        "waited_s": 1.0,
        "chains": 5,
        "triggers": 2,
        "triggers_expected": 2,
        "triggers_by_reason": {"REVIEW": 2},
        "triggers_expected_by_reason": {"REVIEW": 2},
        "cases": 2,
        "triggers_without_case": 0,
        "cases_with_incomplete_evidence": 0,
        "evidence_refs_unresolved": 0,
        "investigations": {"DONE": 2},
        "timeline_events": 6,
        "cases_by_status": {"CLOSED": 2},
        "cases_opened_twice": 0,
        "trigger_deliveries": {"NEW": 2, "DUPLICATE": 1},
        "append_only_tables": {"cm_case_timeline": True},
        "unhealthy": [],
    }


CAUGHT_UP_FAILS = {"caught_up": lambda d: d.update(plane_caught_up=False)}
CASE_FAILS = {
    **CAUGHT_UP_FAILS,
    "triggers_match_policy": lambda d: d.update(triggers_by_reason={"DECLINE": 2}),
    "timelines_appended": lambda d: d["investigations"].update(DUE=1),
    "duplicates_no_double_append": lambda d: d["trigger_deliveries"].update(CONFLICT=1),
    "append_only": lambda d: d["append_only_tables"].update(cm_case_timeline=False),
    "case_workers_green": lambda d: d["unhealthy"].append("case_management: RED"),
}


def _labels() -> Doc:
    return {
        "plane_caught_up": True,
        "caught_up": "every label event reached OFP",
        "waited_s": 1.0,
        "assertions": 3,
        "assertions_expected": 3,
        "same_source_repeats": 0,
        "world_clock": "2018-05-01T00:00:00Z",
        "simulated_work": {"INVESTIGATOR:DONE": 3, "CHARGEBACK:BEYOND_WORLD_CLOCK": 1},
        "by_source_label": {"INVESTIGATOR:FRAUD": 3},
        "ungranted_assertions": 0,
        "refused_writes": 1,
        "label_events_unsent": 0,
        "ofp_labels": 3,
        "unhealthy": [],
    }


LABEL_FAILS = {
    **CAUGHT_UP_FAILS,
    "assertions_appended": lambda d: d["simulated_work"].update({"INVESTIGATOR:DUE": 1}),
    "writer_boundary_held": lambda d: d["simulated_work"].update({"INVESTIGATOR:REFUSED": 1}),
    "labels_published": lambda d: d.update(ofp_labels=2),
    "ls_green": lambda d: d["unhealthy"].append("label_store: RED"),
}


def _ig_ready() -> Doc:
    return {
        "platform_run_id": "platform_20180401T000000Z",
        "health": {"state": "GREEN", "required_platform_run_id": "platform_20180401T000000Z", "reasons": []},
        "auth": {
            "unauthenticated_health_status": 401,
            "unauthenticated_push_status": 401,
            "authenticated_health_status": 200,
        },
        "publish_smoke": {"ok": True, "eb_ref": "fp.bus.control.v1[0]@3"},
        "s3_smoke": {"ok": True, "receipt_segment": "s3://fp-receipts/seg-0"},
    }


IG_READY_FAILS = {
    "ig_healthy": lambda d: d["health"].update(required_platform_run_id="platform_20180402T000000Z"),
    "writer_boundary": lambda d: d["auth"].update(unauthenticated_push_status=200),
    "kafka_writable": lambda d: d["publish_smoke"].update(ok=False),
    "s3_writable": lambda d: d["s3_smoke"].update(ok=False),
}


def _ready() -> Doc:
    return {
        "gates": {"sealed": {"passed": True, "detail": "sealed"}},
        "lease": {"key": "scenario:abc"},
        "ready": {"partition": 0, "offset": 7},
        "ready_at": (0, 7),
        "ready_duplicates": 0,
    }


READY_FAILS = {
    "sr_gates_passed": lambda d: d["gates"]["sealed"].update(passed=False),
    "lease_respected": lambda d: d["lease"].update(conflict="held by another SR"),
    "ready_on_topic": lambda d: d.update(ready_at=(0, 8)),
    "single_ready": lambda d: d.update(ready_duplicates=1),
}


def _wsp() -> Doc:
    root = "s3://fp-oracle/platform_20180401T000000Z/stream_view/"
    return {
        "ready": {"offset": 7},
        "sources": {"traffic": [root + "part-0.parquet"]},
        "view_root": root,
        "completed": True,
        "totals": {"nonretryable": 0, "sent": 10},
        "nonretryable": [],
        "drills": {"duplicates": {"injected": 3, "detail": 3}},
    }


WSP_FAILS = {
    "ready_consumed": lambda d: d.update(ready=None, stopped="no READY"),
    "stream_view_only": lambda d: d["sources"]["traffic"].append("s3://elsewhere/part-1.parquet"),
    "streaming_completed": lambda d: d.update(completed=False, stopped="interrupted"),
    "nonretryable_zero": lambda d: d["totals"].update(nonretryable=1),
    "drills_injected": lambda d: d["drills"].update(worker_crash={"injected": 0, "detail": "no worker"}),
}


def _receipts() -> Doc:
    return {
        "counts": {"ADMIT": 8, "DUPLICATE": 1, "QUARANTINE": 1, "ANOMALY": 0, "PUBLISH_AMBIGUOUS": 0},
        "attempts": 10,
        "claims": 8,
        "admitted_distinct": 8,
        "settled_unpublishable": 0,
        "unresolved_in_doubt": 0,
        "wsp_unreceipted": [],
        "resolved_by_reconcile": 0,
        "segments_cover_through_seq": True,
        "segment_problems": [],
        "receipts_in_segments": 10,
        "receipts_total": 10,
    }


RECEIPT_FAILS = {
    "totals_coherent": lambda d: d.update(wsp_unreceipted=["traffic.ADMIT: WSP 9 > IG 8"]),
    "no_publish_ambiguous": lambda d: d.update(unresolved_in_doubt=1, claims=9),
    "receipts_append_only": lambda d: d.update(receipts_in_segments=9),
}


def _offsets() -> Doc:
    return {
        "wanted_topics": ["fp.bus.traffic.fraud.v1"],
        "dedupe_drift": 0,
        "topics": {"fp.bus.traffic.fraud.v1": [{"partition": 0, "admitted": 5, "advanced": True}]},
    }


OFFSETS_FAILS = {
    "topics_populated": lambda d: d["wanted_topics"].append("fp.bus.context.arrival_events.v1"),
    "offsets_advanced": lambda d: d["topics"]["fp.bus.traffic.fraud.v1"][0].update(advanced=False),
    "dedupe_drift_zero": lambda d: d.update(dedupe_drift=1),
}


def _quarantine() -> Doc:
    return {"count": 1, "refused_receipts": 1, "missing_payloads": [], "by_decision": {"QUARANTINE": 1}}


QUARANTINE_FAILS = {"quarantine_durable": lambda d: d["missing_payloads"].append("s3://fp-quarantine/x")}


def _basis() -> Doc:
    return {
        "label_events_archived": 5,
        "label_assertions_total": 5,
        "archive_segments": 3,
        "basis_fingerprint": "ab" * 32,
        "label_assertions": 4,
        "label_cutoff": "2018-05-01T00:00:00Z",
        "windows": {"train": ["2018-04-01", "2018-04-08"]},
        "feature_leakage": [],
        "label_leakage": {
            "passed": True,
            "observed_after_test_start": 0,
            "test_start": "2018-04-15",
            "cutoff": "2018-04-15",
            "observed_after_test_start_examples": [],
        },
    }


BASIS_FAILS = {
    "basis_pinned": lambda d: d.update(label_events_archived=4),
    "no_label_leakage": lambda d: d["label_leakage"].update(passed=False, observed_after_test_start=1),
    "no_feature_leakage": lambda d: d["feature_leakage"].append("terminal_risk_1d ends after its event"),
}


def _ofs() -> Doc:
    return {
        "rows": 100,
        "iceberg": {"table": "fp.ofs", "snapshot_id": 1, "tag": "ds-1", "rows_read_back": 100},
        "quality": {
            "rows_by_split": {"train": 60, "test": 40},
            "train_targets": {"fraud": 3, "legit": 57},
            "leakage": {"input_after_event": 0},
        },
        "parity": {
            "holds": True,
            "matched": 40,
            "scored_events": 40,
            "mismatched": 0,
            "mismatched_by_feature": {},
            "without_watermark": 0,
            "not_in_archive_count": 0,
        },
        "parity_examples": [],
    }


OFS_FAILS = {
    "dataset_committed": lambda d: d["iceberg"].update(rows_read_back=99),
    "quality_holds": lambda d: d["quality"]["train_targets"].update(fraud=0),
    "online_offline_parity": lambda d: d["parity"].update(holds=False, mismatched=1),
}


def _mf() -> Doc:
    return {
        "floors": {"auc_roc": {"passed": True, "value": 0.86, "floor": 0.7}},
        "metrics": {"auc_roc": 0.86},
        "leakage": {"train_after_end": 0, "test_known_compromised_cards_removed": 12},
        "mlflow_problems": [],
        "mlflow_run_id": "r1",
        "bundle": {"registered": True, "bundle_id": "b", "bundle_version": "1", "model_ref": "s3://fp-models/b/1"},
    }


MF_FAILS = {
    "metric_floors": lambda d: d["floors"]["auc_roc"].update(passed=False),
    "no_leakage": lambda d: d["leakage"].update(train_after_end=1),
    "tracked_in_mlflow": lambda d: d["mlflow_problems"].append("no signature"),
    "candidate_bundle": lambda d: d["bundle"].update(registered=False),
}


def _promotion() -> Doc:
    bundle = {
        "bundle_id": "b",
        "bundle_version": "2",
        "feature_version": "fv1",
        "feature_list": ["amount"],
        "model_kind": "lightgbm",
    }
    published = [
        {"event_type": "PROMOTED", "seq": 1, "topic": "fp.bus.registry.v1", "partition": 0, "offset": 4},
        {"event_type": "ROLLED_BACK", "seq": 2, "topic": "fp.bus.registry.v1", "partition": 0, "offset": 5},
        {"event_type": "ROLLED_FORWARD", "seq": 3, "topic": "fp.bus.registry.v1", "partition": 0, "offset": 6},
    ]
    return {
        "compatible": True,
        "bundle": bundle,
        "shadow": {"events": 40, "changed_by_transition": {}},
        "promoted": True,
        "promotion_rule": {"detail": "AP +0.02"},
        "published": published,
        "drill": {
            "passed": True,
            "steps": [{"event_type": "ROLLED_BACK", "bundle_id": "a", "bundle_version": "1", "resolved_active": True}],
        },
        "active_now": ["b", "2"],
    }


PROMOTION_FAILS = {
    "compatible": lambda d: d.update(compatible=False),
    "promotion_committed": lambda d: d["published"][0].update(event_type="REFUSED"),
    "rollback_drill": lambda d: d["drill"].update(passed=False),
    "active_bundle_resolves": lambda d: d.update(active_now=["a", "1"]),
}


def _closure() -> Doc:
    return {
        "status": "CLOSED",
        "lock_key": "fp.reporter.r",
        "closure_id": "c1",
        "written": ["a.json", "b.json"],
        "reconciliation_holds": True,
        "reconciliation_mismatches": [],
        "funnel": {"sent": 10},
        "anchor_problems": [],
        "conformance": "PASS",
        "drills": {"duplicates": "PASS"},
        "spine_closeout": {"holds": True, "problems": [], "wsp_emitted": 10},
        "marker_ok": True,
        "marker": {"closure_id": "c1"},
    }


CLOSURE_FAILS = {
    "single_writer": lambda d: d.update(status=obs_gates.LOCK_HELD, reason="held by another reporter"),
    "evidence_complete": lambda d: d.update(status=obs_gates.EVIDENCE_MISSING, reason="missing", missing=["x"]),
    "reconciliation_holds": lambda d: d.update(reconciliation_holds=False, reconciliation_mismatches=["sent 10 != 9"]),
    "replay_anchors_valid": lambda d: d["anchor_problems"].append("fp.bus.rtdl.v1[1] has no anchor"),
    "conformance_pass": lambda d: d.update(conformance="FAIL"),
    "drills_observed": lambda d: d["drills"].update(duplicates="FAIL"),
    "spine_closeout": lambda d: d["spine_closeout"].update(holds=False, problems=["AL RED"]),
    "run_completed": lambda d: d.update(marker_ok=False),
}


def _verdict() -> Doc:
    return {
        "source_blockers": [],
        "lane_blockers": [],
        "source_matrix": {"P1": "PASS"},
        "verification_run": {"platform_run_id": "platform_20180402T000000Z", "promoted": "b 2"},
        "proof_matrix": {"spine": {"deploy": {"passed": True}}},
        "published": True,
        "verdict": "PASS",
        "verdict_uri": "s3://fp-evidence/r/verdict.json",
    }


VERDICT_FAILS = {
    "source_matrix_blocker_free": lambda d: d["source_blockers"].append("P9 FAIL"),
    "six_proof_matrix_complete": lambda d: d["lane_blockers"].append("mf: no rollback proof"),
    "verdict_published": lambda d: d.update(published=False),
}


def _run_header() -> Doc:
    return {
        "evidence_objects": 2,
        "run_root": "runs/r/",
        "run_json_error": None,
        "missing": [],
        "digest_recomputes": True,
        "stored_digest": "d1",
        "recomputed_digest": "d1",
        "registry_digest": "d1",
    }


RUN_HEADER_FAILS = {
    "evidence_root_exists": lambda d: d.update(evidence_objects=0),
    "run_json_complete": lambda d: d["missing"].append("image_tag"),
    "config_digest_recomputes": lambda d: d.update(registry_digest="d0"),
}


def _platform_image() -> Doc:
    return {
        "profile": "dev_min",
        "git_sha": "a" * 40,
        "git_origin": "image",
        "git_dirty": False,
        "dirty_paths": [],
        "image_tag": "git-" + "a" * 40,
        "tag_error": None,
        "source_digest": "sha256:" + "b" * 64,
        "lock": {"lock_file": "uv.lock", "lock_digest": "sha256:c", "consistent": True, "detail": "ok"},
        "smoke": {"ok": True, "mode": "subprocess", "entrypoints": ["fp_platform.cli"], "problems": []},
        "registry": {"found": True, "digest": "sha256:" + "d" * 64, "detail": "found"},
    }


PLATFORM_IMAGE_FAILS = {
    "immutable_tag": lambda d: d.update(image_tag=None, tag_error="the commit is 'unknown'"),
    "lock_matches_pyproject": lambda d: d["lock"].update(consistent=False, detail="needs to be updated"),
    "image_in_registry": lambda d: d.update(registry={"found": False, "digest": None, "detail": "no image tagged"}),
    "smoke_without_secrets": lambda d: d["smoke"].update(ok=False, problems=["definitions: ImportError"]),
    "tree_committed": lambda d: d.update(git_dirty=True, dirty_paths=["Makefile"]),
}


def _daemons() -> Doc:
    worker = {
        "component": "archive_writer",
        "state": "RUNNING",
        "detail": "",
        "scope_confirmed": True,
        "heartbeat_run_id": "r",
        "platform_run_id": "r",
        "processes": [11],
        "health_state": "GREEN",
    }
    return {"run_scope": {"value": "r"}, "packs": [{"pack_id": "rtdl_core", "workers": [worker]}]}


def _worker(d: Doc) -> Doc:
    return d["packs"][0]["workers"][0]


DAEMONS_FAILS = {
    # a worker that has not confirmed the scope is down, and a down worker has not reached its dependencies
    "packs_running": (lambda d: _worker(d).update(scope_confirmed=False), {"dependencies_reachable"}),
    "run_scope_confirmed": lambda d: _worker(d).update(heartbeat_run_id="other"),
    "no_duplicate_consumers": lambda d: _worker(d).update(processes=[11, 12]),
    "dependencies_reachable": lambda d: _worker(d).update(health_state="RED"),
}


def _engine() -> Doc:
    return {"snapshot": {"object_count": 4, "uploaded": 4, "skipped": 0, "counts": {"traffic_fraud": 10}}, "absent": []}


def _pack() -> Doc:
    return {"problems": [], "missing": [], "pack_fingerprint": "f1"}


def _checker() -> Doc:
    return {"verdict": "PASS", "outputs": {"traffic_fraud": {"passed": True, "problems": [], "rows": 10}}}


ENGINE_FAILS = {"oracle_inputs_present": lambda d: d["absent"].append("traffic_fraud/part-0.parquet")}
PACK_FAILS = {
    "pack_sealed": lambda d: d["problems"].append("size differs"),
    "required_outputs_sealed": lambda d: d["missing"].append("arrival_events"),
}
VIEW_FAILS = {"receipt_valid": lambda d: d.update(receipt_valid=False, why="a shard is missing")}
CHECKER_FAILS = {
    "checker_pass": lambda d: d["outputs"]["traffic_fraud"].update(passed=False, problems=["rows out of order"])
}

CASES = [
    ("P3 engine_outputs", world_gates.ENGINE_OUTPUTS, _engine, ENGINE_FAILS),
    ("P3 oracle_pack", world_gates.ORACLE_PACK, _pack, PACK_FAILS),
    ("P3 stream_view", world_gates.STREAM_VIEW, lambda: {"receipt_valid": True, "why": "ok"}, VIEW_FAILS),
    ("P3 oracle_checker", world_gates.ORACLE_CHECKER, _checker, CHECKER_FAILS),
    ("P(-1) platform_image", operate_gates.PLATFORM_IMAGE, _platform_image, PLATFORM_IMAGE_FAILS),
    ("P1 run_header", operate_gates.RUN_HEADER, _run_header, RUN_HEADER_FAILS),
    ("P2 daemons_ready", operate_gates.DAEMONS_READY, _daemons, DAEMONS_FAILS),
    ("P11 run_closure", obs_gates.RUN_CLOSURE, _closure, CLOSURE_FAILS),
    ("P16 platform_verdict", obs_gates.PLATFORM_VERDICT, _verdict, VERDICT_FAILS),
    ("P15 mpr_promotion", learning_gates.MPR_PROMOTION, _promotion, PROMOTION_FAILS),
    ("P12 learning_input_basis", learning_gates.LEARNING_INPUT_BASIS, _basis, BASIS_FAILS),
    ("P13 ofs_dataset", learning_gates.OFS_DATASET, _ofs, OFS_FAILS),
    ("P14 mf_candidate", learning_gates.MF_CANDIDATE, _mf, MF_FAILS),
    ("P4 ig_ready", control_gates.IG_READY, _ig_ready, IG_READY_FAILS),
    ("P5 ready_published", control_gates.READY_PUBLISHED, _ready, READY_FAILS),
    ("P6 wsp_stream", control_gates.WSP_STREAM, _wsp, WSP_FAILS),
    ("P7 ingest_receipt_summary", control_gates.INGEST_RECEIPT_SUMMARY, _receipts, RECEIPT_FAILS),
    ("P7 kafka_offsets_snapshot", control_gates.KAFKA_OFFSETS_SNAPSHOT, _offsets, OFFSETS_FAILS),
    ("P7 quarantine_summary", control_gates.QUARANTINE_SUMMARY, _quarantine, QUARANTINE_FAILS),
    ("P8 rtdl_caught_up", rtdl_gates.RTDL_CAUGHT_UP, _p8, P8_FAILS),
    ("P9 decision_summary", rtdl_gates.DECISION_SUMMARY, _decisions, DECISION_FAILS),
    ("P9 action_summary", rtdl_gates.ACTION_SUMMARY, _actions, ACTION_FAILS),
    ("P9 audit_summary", rtdl_gates.AUDIT_SUMMARY, _audit, AUDIT_FAILS),
    ("P10 case_summary", case_gates.CASE_SUMMARY, _cases, CASE_FAILS),
    ("P10 label_summary", case_gates.LABEL_SUMMARY, _labels, LABEL_FAILS),
]


@pytest.mark.parametrize(("asset", "gates", "doc", "fails"), CASES, ids=[c[0] for c in CASES])
def test_each_gate_passes_its_good_document_and_fails_its_bad_one(
    asset: str, gates: tuple[Gate, ...], doc: Callable[[], Doc], fails: dict
):
    assert sorted(fails) == sorted(g.name for g in gates), f"{asset}: a gate without its failing document"
    good = judge(gates, doc())
    assert all(r.passed for r in good), [(r.name, r.detail) for r in good if not r.passed]
    for gate in gates:
        bad = copy.deepcopy(doc())
        change, also = fails[gate.name] if isinstance(fails[gate.name], tuple) else (fails[gate.name], set())
        change(bad)
        results = {r.name: r for r in judge(gates, bad)}
        assert not results[gate.name].passed, f"{asset}: {gate.name} passed a document that should fail it"
        others = {n for n, r in results.items() if n != gate.name and not r.passed}
        assert others == also, f"{asset}: {gate.name}'s change failed {sorted(others)}, expected {sorted(also)}"


def test_a_gate_name_is_declared_once_per_asset():
    for asset, gates, *_ in CASES:
        names = [g.name for g in gates]
        assert len(names) == len(set(names)), asset


def test_a_claim_settled_as_unpublishable_keeps_the_totals_coherent():
    """A claim reconcile settled (terminal QUARANTINE receipt) is accounted for; one nobody accounts for is not."""
    settled = _receipts() | {"claims": 9, "settled_unpublishable": 1}
    unaccounted = _receipts() | {"claims": 9}
    verdicts = [
        {r.name: r for r in judge(control_gates.INGEST_RECEIPT_SUMMARY, d)}["totals_coherent"]
        for d in (settled, unaccounted)
    ]
    assert verdicts[0].passed and "1 settled unpublishable" in verdicts[0].detail
    assert not verdicts[1].passed
