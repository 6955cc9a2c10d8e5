"""The gates of P(-1) PACKAGING_READY, P1 RUN_PINNED and P2 DAEMONS_READY, each declared once: name, meaning and
predicate over the phase's evidence document (`packaging.packaging_facts`: the code's identity, lock, smoke and
registry image; `run_pinning.p1_facts`: what the stored evidence and the run registry hold;
`readiness.readiness_doc`: the spine packs' workers). Dagster-free: the assets turn them into blocking
checks; the unit tests judge them on documents of their own."""

from __future__ import annotations

from typing import Any

from fp_platform.contracts.gates import Gate, Judgement

Doc = dict[str, Any]


# --- P(-1) platform_image: doc = packaging.packaging_facts ------------------------------------------------
def _immutable_tag(d: Doc) -> Judgement:
    if d["tag_error"] or not d["image_tag"]:
        return False, d["tag_error"] or "no tag"
    return True, f"{d['image_tag']} ({d['git_origin']})", {"image_tag": d["image_tag"], "git_sha": d["git_sha"]}


def _lock(d: Doc) -> Judgement:
    lock = d["lock"]
    return lock["consistent"], f"{lock['lock_file']} {lock['lock_digest']}: {lock['detail']}"


def _image(d: Doc) -> Judgement:
    registry = d["registry"]
    if registry is None:  # no image on this profile (ECR_REPO_URI unset): the sources are what runs
        ok = str(d["source_digest"]).startswith("sha256:")
        return ok, f"no image on profile {d['profile']}: the source tree runs, source digest {d['source_digest']}"
    return registry["found"], registry["detail"], {"image_digest": registry["digest"]}


def _smoke(d: Doc) -> Judgement:
    smoke = d["smoke"]
    if not smoke["ok"]:
        return False, f"{smoke.get('mode')}: {'; '.join(smoke.get('problems') or ['failed'])}"
    return True, f"{smoke['mode']}: {len(smoke.get('entrypoints', []))} entrypoints present, no secrets read"


def _committed(d: Doc) -> Judgement:
    if d["git_dirty"] is None:
        return False, "no checkout to ask whether the tree is committed"
    paths = d["dirty_paths"]
    return not d["git_dirty"], (f"uncommitted: {', '.join(paths)}" if paths else "the tree is the commit")


PLATFORM_IMAGE = (
    Gate("immutable_tag", "the commit is known and names the immutable tag git-<sha>, never `unknown`", _immutable_tag),
    Gate("lock_matches_pyproject", "uv.lock is the resolution of pyproject.toml (`uv lock --check`)", _lock),
    Gate(
        "image_in_registry",
        "where the profile runs an image, git-<sha> exists in ECR and its digest is retrievable; locally the "
        "source digest identifies the code",
        _image,
    ),
    Gate("smoke_without_secrets", "the smoke entrypoint runs with no secret in reach", _smoke),
    Gate(
        "tree_committed",
        "the checkout has no uncommitted changes (warns only: the source digest names what ran)",
        _committed,
        advisory=True,
    ),
)


# --- P1 run_header: doc = run_pinning.p1_facts -------------------------------------------------------------
def _run_json_complete(d: Doc) -> Judgement:
    if d["run_json_error"]:
        return False, d["run_json_error"]
    missing = d["missing"]
    return (
        not missing,
        f"missing: {', '.join(missing)}" if missing else "all required fields present",
        {"missing": missing},
    )


def _digest_recomputes(d: Doc) -> Judgement:
    if d["run_json_error"]:
        return False, "run.json unreadable"
    return (
        d["digest_recomputes"] and d["registry_digest"] == d["stored_digest"],
        f"stored {d['stored_digest']}, recomputed {d['recomputed_digest']}, registry {d['registry_digest']}",
        {"stored": d["stored_digest"], "recomputed": d["recomputed_digest"], "registry": d["registry_digest"]},
    )


RUN_HEADER = (
    Gate(
        "evidence_root_exists",
        "the run's evidence root holds at least one object",
        lambda d: (d["evidence_objects"] > 0, f"{d['evidence_objects']} objects under {d['run_root']}"),
    ),
    Gate("run_json_complete", "run.json has ids, env, config, config digest and image provenance", _run_json_complete),
    Gate(
        "config_digest_recomputes",
        "recomputing the digest over run.json's config gives the stored digest (and the run registry's)",
        _digest_recomputes,
    ),
)


# --- P2 daemons_ready: doc = readiness.readiness_doc -------------------------------------------------------
def _workers(d: Doc) -> list[dict]:
    return [w for p in d["packs"] for w in p["workers"]]


def _down(d: Doc) -> list[str]:
    return [f"{w['component']} {w['state']} {w['detail']}".strip() for w in _workers(d) if not w["scope_confirmed"]]


def _scope(d: Doc) -> Judgement:
    run_id = d["run_scope"]["value"]
    wrong = [
        w["component"]
        for w in _workers(d)
        if w["heartbeat_run_id"] not in (None, run_id) or w["platform_run_id"] != run_id
    ]
    return bool(_workers(d)) and not wrong, f"other scope: {wrong}" if wrong else f"every worker serves {run_id}"


def _no_duplicates(d: Doc) -> Judgement:
    dupes = [f"{w['component']}: pids {w['processes']}" for w in _workers(d) if len(w["processes"]) > 1]
    return not dupes, "; ".join(dupes) or "one process per worker"


def _reachable(d: Doc) -> Judgement:
    unhealthy = [
        f"{w['component']}: {w['health_state']}" for w in _workers(d) if w["health_state"] not in (None, "GREEN")
    ]
    return (
        not unhealthy and not _down(d),
        "; ".join(unhealthy) or "every worker reached Kafka, Postgres and S3 (GREEN heartbeat)",
    )


DAEMONS_READY = (
    Gate(
        "packs_running",
        "every built worker of the spine packs runs (one replica) and confirmed the run scope",
        lambda d: (
            bool(_workers(d)) and not _down(d),
            "; ".join(_down(d)) or f"{len(_workers(d))} workers running, one replica each",
        ),
    ),
    Gate("run_scope_confirmed", "every worker serves REQUIRED_PLATFORM_RUN_ID = this run", _scope),
    Gate("no_duplicate_consumers", "no second process (supervised or manual) runs any worker", _no_duplicates),
    Gate("dependencies_reachable", "every worker reached its substrate (GREEN heartbeat)", _reachable),
)
