"""The run lifecycle's phases (spec: dev_min run-process §2.2, dev_full P12..P17), in order.

A phase's Dagster asset group is `<phase_id>_<name>` (e.g. `P1_RUN_PINNED`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    phase_id: str
    name: str

    @property
    def group(self) -> str:
        return f"{self.phase_id.replace('(-1)', 'M1')}_{self.name}"


# Each phase's id, the one spelling every module imports (evidence, gate verdicts and asset groups carry it).
P_M1 = "P(-1)"
P0 = "P0"
P1 = "P1"
P2 = "P2"
P3 = "P3"
P4 = "P4"
P5 = "P5"
P6 = "P6"
P7 = "P7"
P8 = "P8"
P9 = "P9"
P10 = "P10"
P11 = "P11"
P12 = "P12"
P13 = "P13"
P14 = "P14"
P15 = "P15"
P16 = "P16"
P17 = "P17"

PHASES: tuple[Phase, ...] = (
    Phase(P_M1, "PACKAGING_READY"),
    Phase(P0, "SUBSTRATE_READY"),
    Phase(P1, "RUN_PINNED"),
    Phase(P2, "DAEMONS_READY"),
    Phase(P3, "ORACLE_READY"),
    Phase(P4, "INGEST_READY"),
    Phase(P5, "READY_PUBLISHED"),
    Phase(P6, "STREAMING_ACTIVE"),
    Phase(P7, "INGEST_COMMITTED"),
    Phase(P8, "RTDL_CAUGHT_UP"),
    Phase(P9, "DECISION_CHAIN_COMMITTED"),
    Phase(P10, "CASE_LABELS_COMMITTED"),
    Phase(P11, "OBS_GOV_CLOSED"),
    Phase(P12, "LEARNING_INPUT_READY"),
    Phase(P13, "OFS_DATASET_COMMITTED"),
    Phase(P14, "MF_EVAL_COMMITTED"),
    Phase(P15, "MPR_PROMOTION_COMMITTED"),
    Phase(P16, "FULL_PLATFORM_CLOSED"),
    Phase(P17, "TEARDOWN_IDLE_SAFE"),
)
PHASE_IDS: tuple[str, ...] = tuple(p.phase_id for p in PHASES)
_BY_ID = {p.phase_id: p for p in PHASES}


def phase(phase_id: str) -> Phase:
    try:
        return _BY_ID[phase_id]
    except KeyError:
        raise ValueError(f"unknown phase {phase_id!r}; phases are {', '.join(PHASE_IDS)}") from None


def phases_until(phase_id: str) -> tuple[Phase, ...]:
    """Every phase up to and including `phase_id`, in lifecycle order."""
    return PHASES[: PHASE_IDS.index(phase(phase_id).phase_id) + 1]
