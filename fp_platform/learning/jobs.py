"""The learning lane's one-shot jobs: `python -m fp_platform.learning.jobs JOB --run-id ID`.

P12 `basis` pins the learning input (add `--label-cutoff ISO` to move the label as-of cutoff), P13 `ofs`
builds and commits the dataset of the pinned basis, P14 `train` trains and tracks the candidate, P15
`compatibility` checks the candidate against what OFP serves (`--candidate BUNDLE_ID:VERSION` names
another registered bundle) and `promote` judges DF's shadow scoring, promotes and drills the rollback. Dagster
launches them through Pipes (subprocess locally, a pod on EKS); an operator can run them by hand. Exit
4 when the job refuses (its reason is in the result); under Pipes the asset judges the result.
"""

from __future__ import annotations

import argparse
import os
import sys

from fp_platform.handles import handles
from fp_platform.learning import basis, model_factory, offline_dataset, promotion
from fp_platform.learning.policy import load_policy
from fp_platform.learning.step import Step
from fp_platform.substrate import db
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.job_channel import job_channel
from fp_platform.substrate.object_store import S3ObjectStore

EXIT_REFUSED = 4
REFUSALS = (
    basis.BasisRefused,
    offline_dataset.DatasetRefused,
    model_factory.CandidateRefused,
    promotion.PromotionRefused,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_platform.learning.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=["basis", "ofs", "train", "compatibility", "promote"])
    parser.add_argument("--run-id", required=True, help="platform_run_id of the closed spine run")
    parser.add_argument("--label-cutoff", help="basis: the label as-of cutoff (ISO world time); default: test start")
    parser.add_argument("--candidate", help="compatibility: BUNDLE_ID:VERSION (default: P14's candidate)")
    args = parser.parse_args(argv)
    h = handles()
    policy, store, writer = load_policy(h), S3ObjectStore(h), run_evidence(h, args.run_id)
    code = 0
    with job_channel() as (log, report), db.connect(h, autocommit=True) as conn:
        step = Step(h, conn, store, writer, args.run_id, policy, log)
        try:
            if args.job == "basis":
                cutoff = basis.parse_time(args.label_cutoff) if args.label_cutoff else None
                result = basis.pin_basis(step, cutoff)
            elif args.job == "ofs":
                result = offline_dataset.build_dataset(step)
            elif args.job == "compatibility":
                result = promotion.check_compatibility(step, args.candidate)
            elif args.job == "promote":
                result = promotion.promote(step)
            else:
                version = writer.read(h.get("EVIDENCE_RUN_JSON_KEY")).get("git_sha", "unknown")
                result = model_factory.train_candidate(step, version)
        except REFUSALS as exc:
            log(str(exc))
            result, code = {"status": "REFUSED", "reason": str(exc)}, EXIT_REFUSED
        report({"status": "DONE", **result} if code == 0 else result)
    return 0 if os.environ.get("DAGSTER_PIPES_CONTEXT") else code


if __name__ == "__main__":
    sys.exit(main())
