"""The reporter (P11) and the full-platform verdict (P16) as one-shot jobs:
`python -m fp_platform.obs_gov.jobs report|verdict --run-id ID`.

Dagster launches them through Pipes; an operator can run them by hand to re-close a run or re-judge it.
`report`: exit 0 once the closure is written (its verdict is in the result), 3 when another reporter
holds the run's lock, 4 when the closure is refused (required evidence missing, named). `verdict`: exit
0 on PASS, 1 with the blockers listed. Under Pipes the exit is 0 whenever a result was reported: the
asset judges the result.
"""

from __future__ import annotations

import argparse
import os
import sys

from fp_platform.handles import handles
from fp_platform.obs_gov import reporter, verdict
from fp_platform.substrate.evidence_store import run_evidence
from fp_platform.substrate.job_channel import job_channel

EXIT_BUSY, EXIT_REFUSED = 3, 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_platform.obs_gov.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=["report", "verdict"])
    parser.add_argument("--run-id", required=True, help="platform_run_id")
    parser.add_argument(
        "--expect-gate",
        action="append",
        default=[],
        metavar="NAME",
        help="a gate verdict file the closure requires (repeatable), e.g. gates/P9/audit_summary.json",
    )
    parser.add_argument(
        "--second-run", metavar="RUN_ID", help="verdict: the spine run that decided with the bundle this run promoted"
    )
    args = parser.parse_args(argv)
    h = handles()
    code = 0
    if args.job == "verdict":
        with job_channel() as (log, report):
            result = verdict.judge(h, args.run_id, args.second_run)
            log(f"verdict {result['verdict']}: {len(result['blockers'])} blockers")
            report(result)
        return 0 if os.environ.get("DAGSTER_PIPES_CONTEXT") or result["verdict"] == "PASS" else 1
    with job_channel() as (log, report):
        try:
            result = reporter.close_run(
                h, run_evidence(h, args.run_id), args.expect_gate, log, h.get("PROCESS_DRILLS_PATH_PATTERN")
            )
        except reporter.ReporterBusy as exc:
            log(str(exc))
            report({"status": "REFUSED_LOCK_HELD", "reason": str(exc)})
            code = EXIT_BUSY
        except reporter.ClosureRefused as exc:
            log(str(exc))
            report({"status": "REFUSED_EVIDENCE_MISSING", "reason": str(exc), "missing": exc.missing})
            code = EXIT_REFUSED
        else:
            report(result)
    return 0 if os.environ.get("DAGSTER_PIPES_CONTEXT") else code


if __name__ == "__main__":
    sys.exit(main())
