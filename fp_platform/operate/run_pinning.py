"""P1 RUN_PINNED: assemble the run config, digest it, and pin it once as `run.json`.

A run id is pinned to exactly one config digest: re-pinning the same config is a no-op, a
different config for an existing run fails closed (spec P1.7: a new config needs a new run). The image
identity comes from P(-1)'s evidence (`packaging/image_provenance.json`): the registry digest where the
profile runs an image, and on the local profile no image digest, with the source digest instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from fp_platform.contracts.canonical import config_digest
from fp_platform.contracts.evidence import EvidenceError, EvidenceWriter
from fp_platform.contracts.phases import P1
from fp_platform.handles import Handles

RUN_JSON_REQUIRED = (
    "platform_run_id",
    "env",
    "config",
    "config_digest",
    "config_digest_algo",
    "image_tag",
    "image_digest_kind",
    "source_digest",
    "git_sha",
    "written_at_utc",
)
REGISTRY_DIGEST = "registry"  # image_digest_kind of an image resolved in the registry (then image_digest is required)
IMAGE_FIELDS = ("image_tag", "image_digest", "image_digest_kind", "image_ref", "source_digest", "git_sha")
_BUCKET_KEYS = ("S3_ORACLE_BUCKET", "S3_ARCHIVE_BUCKET", "S3_QUARANTINE_BUCKET", "S3_EVIDENCE_BUCKET")
_PATTERN_KEYS = ("S3_EVIDENCE_RUN_ROOT_PATTERN",)
_DB_KEYS = ("DB_ENGINE", "DB_NAME", "DB_SCOPE")
_KNOB_KEYS = ("IG_MAX_REQUEST_BYTES", "IG_RATE_LIMIT_RPS", "IG_RATE_LIMIT_BURST", "RTDL_CAUGHT_UP_LAG_MAX")


@dataclass(frozen=True)
class RunParams:
    """What the operator chose for this run."""

    scale: str = "demo"
    seed: int = 42


def image_from_packaging(doc: dict[str, Any]) -> dict[str, Any]:
    """The image identity in P(-1)'s evidence document; refused when P(-1) recorded none (no tag: it failed)."""
    image = doc.get("image")
    if not isinstance(image, dict) or not image.get("image_tag"):
        raise EvidenceError(f"P(-1) recorded no image identity for run {doc.get('platform_run_id')}; its gates failed")
    return image


def build_run_config(h: Handles, platform_run_id: str, params: RunParams, image: dict[str, Any]) -> dict[str, Any]:
    """The pinned config: environment, handle references, runtime knobs and the image identity P(-1) recorded."""
    return {
        "env": h.profile,
        "platform_run_id": platform_run_id,
        "params": {"scale": params.scale, "seed": params.seed},
        "scenario_equivalence_key": h.pattern(
            "SCENARIO_EQUIVALENCE_KEY_INPUT", platform_run_id=platform_run_id, scale=params.scale, seed=str(params.seed)
        ),
        "handles": {
            "buckets": {k: h.get(k) for k in _BUCKET_KEYS},
            "prefix_patterns": {k: h.get(k) for k in _PATTERN_KEYS},
            "topics": {t.key: t.name for t in h.topics()},
            "db": {k: h.get(k) for k in _DB_KEYS},
        },
        "runtime_knobs": {k: h.get(k) for k in _KNOB_KEYS},
        "image": image,
    }


def run_json_doc(h: Handles, platform_run_id: str, params: RunParams, image: dict[str, Any]) -> dict[str, Any]:
    config = build_run_config(h, platform_run_id, params, image)
    return {
        "platform_run_id": platform_run_id,
        "env": h.profile,
        "config": config,
        "config_digest": config_digest(config),
        "config_digest_algo": h.get("CONFIG_DIGEST_ALGO"),
        **{k: image.get(k) for k in IMAGE_FIELDS},
    }


@dataclass(frozen=True)
class PinResult:
    run_json: dict[str, Any]
    created: bool


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


def pin_run(
    h: Handles, writer: EvidenceWriter, conn: psycopg.Connection, params: RunParams, image: dict[str, Any]
) -> PinResult:
    """Write run.json once and register the run; an existing pin must have the same digest."""
    doc = run_json_doc(h, writer.platform_run_id, params, image)
    if writer.exists(h.get("EVIDENCE_RUN_JSON_KEY")):
        pinned = writer.read(h.get("EVIDENCE_RUN_JSON_KEY"))
        if pinned.get("config_digest") != doc["config_digest"]:
            changed = _changed_keys(pinned.get("config", {}), doc["config"])
            raise EvidenceError(
                f"run {writer.platform_run_id} is pinned with config digest {pinned.get('config_digest')}; "
                f"this config gives {doc['config_digest']} (changed: {', '.join(changed) or 'unknown'}). "
                "A config change needs a new run."
            )
        register_run(h, writer, conn, pinned)
        return PinResult(run_json=pinned, created=False)
    written = writer.write_truth(h.get("EVIDENCE_RUN_JSON_KEY"), doc, phase_id=P1)
    register_run(h, writer, conn, written)
    return PinResult(run_json=written, created=True)


def register_run(h: Handles, writer: EvidenceWriter, conn: psycopg.Connection, run_json: dict[str, Any]) -> None:
    """Append the run to run_registry (append-only); an existing row must carry the same digest."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO run_registry (platform_run_id, profile, config_digest, run_json_uri) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (platform_run_id) DO NOTHING",
            (
                run_json["platform_run_id"],
                h.profile,
                run_json["config_digest"],
                writer.uri(h.get("EVIDENCE_RUN_JSON_KEY")),
            ),
        )
        row = conn.execute(
            "SELECT config_digest FROM run_registry WHERE platform_run_id = %s", (run_json["platform_run_id"],)
        ).fetchone()
    if row[0] != run_json["config_digest"]:
        raise EvidenceError(
            f"run_registry pins {run_json['platform_run_id']} to digest {row[0]}, run.json says "
            f"{run_json['config_digest']}"
        )


def check_run_json_complete(run_json: dict[str, Any]) -> list[str]:
    """Names of required run.json fields that are missing or empty."""
    missing = [f for f in RUN_JSON_REQUIRED if run_json.get(f) in (None, "", {})]
    if run_json.get("image_digest_kind") == REGISTRY_DIGEST and not run_json.get("image_digest"):
        missing.append("image_digest")
    config = run_json.get("config") or {}
    missing += [f"config.{f}" for f in ("env", "handles", "runtime_knobs", "image") if not config.get(f)]
    return missing


def recompute_digest(run_json: dict[str, Any]) -> tuple[bool, str]:
    """Recompute config_digest over run.json's config; (equal?, recomputed digest)."""
    recomputed = config_digest(run_json.get("config") or {})
    return recomputed == run_json.get("config_digest"), recomputed


def p1_facts(h: Handles, writer: EvidenceWriter, conn: psycopg.Connection) -> dict:
    """What P1's gates judge, read back from the stored evidence and the run registry (not from what this
    process meant to write)."""
    names = writer.list()
    doc = {"evidence_objects": len(names), "run_root": writer.run_root, "run_json_error": None}
    try:
        run_json = writer.read(h.get("EVIDENCE_RUN_JSON_KEY"))
    except EvidenceError as exc:
        return {**doc, "run_json_error": str(exc)}
    equal, recomputed = recompute_digest(run_json)
    row = conn.execute(
        "SELECT config_digest FROM run_registry WHERE platform_run_id = %s", (writer.platform_run_id,)
    ).fetchone()
    return {
        **doc,
        "missing": check_run_json_complete(run_json),
        "digest_recomputes": equal,
        "stored_digest": run_json.get("config_digest"),
        "recomputed_digest": recomputed,
        "registry_digest": row[0] if row else None,
    }
