"""The phase asset factory without the stack: a body's Verdict is judged by the gates the asset declares, its
evidence written first and the verdict recorded; a Refusal fails the named gate only."""

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from fp_platform.checks import JobRefused, Refusal, Verdict, phase_asset
from fp_platform.contracts.evidence import EvidenceWriter
from fp_platform.contracts.gates import Gate, gate_evidence_name
from fp_platform.contracts.phases import P9
from fp_platform.resources import platform_run_partitions
from fp_platform_tests.support import MemoryStore

pytestmark = pytest.mark.unit
RUN = "platform_15000101T000000Z"
GATES = (
    Gate("enough", "at least two", lambda d: (d["n"] >= 2, f"n={d['n']}")),
    Gate("none_lost", "nothing lost", lambda d: (d["lost"] == 0, f"lost={d['lost']}")),
)


def _run(doc: dict, refuse: str | None = None, raised: bool = False):
    writer = EvidenceWriter(MemoryStore(), "evidence", f"runs/{RUN}/", RUN)

    @phase_asset(P9, GATES)
    def tiny(context):
        if refuse:
            refusal = Refusal(writer, refuse, {"reason": "the job refused"})
            if raised:  # as launch_job(..., refused_gate=...) does
                raise JobRefused(refusal)
            return refusal
        return Verdict(writer, doc, {"n": doc["n"]}, {"tiny/summary.json": {"n": doc["n"]}})

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(platform_run_partitions.name, [RUN])  # the factory partitions by run
    result = materialize([tiny], partition_key=RUN, instance=instance, raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    return writer, result, checks


def test_a_verdict_is_judged_by_the_declared_gates_and_recorded():
    writer, result, checks = _run({"n": 3, "lost": 1})
    assert checks == {"enough": True, "none_lost": False}
    assert writer.read("tiny/summary.json")["n"] == 3
    assert writer.exists(gate_evidence_name(P9, "tiny"))
    assert result.asset_materializations_for_node("tiny")[0].asset_key == AssetKey("tiny")


def test_a_refusal_fails_its_gate_with_the_reason_the_others_unjudged_and_an_undeclared_gate_is_an_error():
    writer, _, checks = _run({"n": 0, "lost": 0}, refuse="none_lost")
    assert checks == {"enough": False, "none_lost": False}
    recorded = {g["name"]: g["detail"] for g in writer.read(gate_evidence_name(P9, "tiny"))["gates"]}
    assert recorded == {"none_lost": "the job refused", "enough": "not judged: none_lost refused"}
    _, result, _ = _run({"n": 0, "lost": 0}, refuse="no_such_gate")
    assert not result.success


def test_a_refusal_raised_by_a_job_is_recorded_as_one_returned():
    writer, _, checks = _run({"n": 0, "lost": 0}, refuse="none_lost", raised=True)
    assert checks == {"enough": False, "none_lost": False}
    recorded = {g["name"]: g["detail"] for g in writer.read(gate_evidence_name(P9, "tiny"))["gates"]}
    assert recorded == {"none_lost": "the job refused", "enough": "not judged: none_lost refused"}
