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


def _duplicate(w: dict) -> str | None:
    """What runs a worker more than once: two local processes, two ECS tasks running its command (a second
    service or a hand-made task), its ECS service wanting or running more than one task, or its EKS Deployment
    wanting more than one replica or having two pods that are not terminating."""
    deployment = w.get("k8s_deployment")
    if deployment is not None:
        if len(w["processes"]) > 1 or (deployment["desired"] or 0) > 1:
            return (
                f"{w['component']}: Deployment {deployment['deployment']} desired {deployment['desired']},"
                f" pods {w['processes']}"
            )
        return None
    service = w.get("ecs_service")
    if service is None:
        return f"{w['component']}: pids {w['processes']}" if len(w["processes"]) > 1 else None
    if len(w["processes"]) > 1 or max(service["desired"], service["running"]) > 1:
        return (
            f"{w['component']}: ECS service {service['service']} desired {service['desired']} running"
            f" {service['running']}, tasks running its command {w['processes']}"
        )
    return None


def _no_duplicates(d: Doc) -> Judgement:
    dupes = [line for w in _workers(d) if (line := _duplicate(w))]
    return not dupes, "; ".join(dupes) or "one process (or ECS task) per worker"


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
    Gate(
        "no_duplicate_consumers",
        "no second process or ECS task (supervised or manual) runs any worker; no worker's service wants two",
        _no_duplicates,
    ),
    Gate("dependencies_reachable", "every worker reached its substrate (GREEN heartbeat)", _reachable),
)


# --- P0 substrate_snapshot: doc = substrate_ready.substrate_facts -----------------------------------------
def _buckets(d: Doc) -> Judgement:
    bad = [f"{k} {b['bucket']}: {b['error'] or 'read back differs'}" for k, b in d["buckets"].items()]
    bad = [line for line, b in zip(bad, d["buckets"].values(), strict=True) if not b["writable"]]
    return bool(d["buckets"]) and not bad, "; ".join(bad) or f"{len(d['buckets'])} buckets took and returned a marker"


def _topics(d: Doc) -> Judgement:
    bus = d["bus"]
    if bus["error"]:
        return False, f"broker unreachable ({bus['bootstrap_from']}): {bus['error']}"
    bad = [
        f"{name}: {'missing' if t['partitions'] is None else t['partitions']} partitions,"
        f" pinned {t['pinned_partitions']}"
        for name, t in bus["topics"].items()
        if t["partitions"] != t["pinned_partitions"]
    ]
    return bool(bus["topics"]) and not bad, "; ".join(bad) or f"{len(bus['topics'])} topics with pinned partitions"


def _database(d: Doc) -> Judgement:
    db = d["database"]
    if db["error"]:
        return False, f"database unreachable as the application role: {db['error']}"
    if db["tls_required"] and not db["ssl"]:
        return False, f"DB_SSL_MODE={db['ssl_mode']} but the session is not encrypted"
    tls = f"TLS {db['ssl_version']}" if db["ssl"] else f"no TLS (DB_SSL_MODE={db['ssl_mode']}, not required here)"
    return True, f"reached as {db['role']['user']} over {tls}"


def _app_role(d: Doc) -> Judgement:
    db = d["database"]
    if db["error"]:
        return False, "not judged: database unreachable"
    powers = [p for p in ("superuser", "createrole", "createdb", "bypassrls") if db["role"][p]]
    owned = {k: n for k, n in db["owns"].items() if n}
    user = db["role"]["user"]
    if not powers and not owned:
        return True, f"{user} is no superuser and owns nothing"
    problems = ([f"has {', '.join(powers)}"] if powers else []) + ([f"owns {owned}"] if owned else [])
    return False, f"{user}: {'; '.join(problems)}"


def _secrets(d: Doc) -> Judgement:
    missing = [f"{k} ({s['path']}): {s['error'] or 'empty'}" for k, s in d["secrets"].items() if not s["present"]]
    return bool(d["secrets"]) and not missing, "; ".join(missing) or f"{len(d['secrets'])} secrets present"


def _forbidden(d: Doc) -> Judgement:
    f = d["forbidden_infrastructure"]
    if not f["applicable"]:
        return True, f"{f['scope']} profile: no cloud account to hold a NAT gateway, load balancer or MSK cluster"
    if f["error"]:
        return False, f"forbidden-infrastructure scan failed: {f['error']}"
    found = [f"{r['kind']} {r['ident']}" for r in f["found"]]
    return not found, f"found {'; '.join(found)}" if found else f"no NAT gateway, load balancer or MSK in {f['scope']}"


SUBSTRATE_READY = (
    Gate("buckets_writable", "every bucket handle takes a marker object and returns it", _buckets),
    Gate("topics_pinned", "every topic of the registry exists with its pinned partition count", _topics),
    Gate("database_reachable_tls", "the database answers the application role, over TLS where required", _database),
    Gate("app_role_least_privilege", "the application role is no superuser and owns nothing (issue 20)", _app_role),
    Gate("secrets_present", "every secret path the profile names holds a value", _secrets),
    Gate(
        "no_forbidden_infrastructure",
        "no NAT gateway, no load balancer, no provisioned MSK (dev_min) in the account",
        _forbidden,
    ),
)


# --- P17 teardown_proof: doc = teardown.teardown_facts ------------------------------------------------------
def _found(scan: Doc) -> list[str]:
    return [f"{r['kind']} {r['ident']}" + (f" ({r['detail']})" if r["detail"] else "") for r in scan["found"]]


def _daemons_stopped(d: Doc) -> Judgement:
    alive = d["daemons"]["alive"]
    if alive["error"]:
        return False, f"cannot see the run's daemons: {alive['error']}"
    left = _found(alive)
    stop_error = f" (stop failed: {d['daemons']['error']})" if d["daemons"]["error"] else ""
    return not left, (f"still alive: {'; '.join(left)}{stop_error}" if left else f"stopped {d['daemons']['stopped']}")


def _demo_destroyed(d: Doc) -> Judgement:
    demo = d["demo_stack"]
    if not demo["applicable"]:
        return True, demo["detail"]
    return demo["succeeded"], (
        "terraform destroy succeeded" if demo["succeeded"] else f"destroy failed: {demo['tail']}"
    )


def _no_residuals(d: Doc) -> Judgement:
    scan = d["residuals"]
    if scan["error"]:
        return False, f"residual scan failed: {scan['error']}"
    left = _found(scan)
    return not left, f"cost-bearing residuals: {'; '.join(left)}" if left else "nothing cost-bearing left"


def _credentials_removed(d: Doc) -> Judgement:
    c = d["credentials"]
    if not c["applicable"]:
        return True, c["detail"]
    if c["error"]:
        return False, f"cannot list SSM parameters: {c['error']}"
    return not c["present"], (f"still in SSM: {c['present']}" if c["present"] else f"{len(c['checked'])} paths gone")


def _evidence_readable(d: Doc) -> Judgement:
    e = d["evidence"]
    return e["files"] > 0 and not e["unreadable"], f"{e['files']} evidence files, unreadable {e['unreadable'][:3]}"


TEARDOWN = (
    Gate(
        "daemons_stopped",
        "none of the run's daemons is alive (processes, ECS services' tasks, or EKS Deployments' and job pods)",
        _daemons_stopped,
    ),
    Gate("demo_stack_destroyed", "terraform destroy of the per-run stack succeeded (dev_min's demo)", _demo_destroyed),
    Gate(
        "no_cost_bearing_residuals",
        "the tag-based residual scan finds nothing cost-bearing outside the pinned always-on set",
        _no_residuals,
    ),
    Gate("demo_credentials_removed", "the per-run stack's SSM credentials are gone (dev_min)", _credentials_removed),
    Gate("evidence_readable", "every JSON evidence file of the run still reads back", _evidence_readable),
)
