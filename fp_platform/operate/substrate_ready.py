"""P0 SUBSTRATE_READY: every handle of the profile resolves before any runtime task runs (spec RPF P0.5).

Each probe answers by touching the substrate the way the runtime will, and records what it saw: each bucket
takes a marker object and gives it back (then it is deleted); each topic of the registry exists with its
pinned partition count; the database answers as the application role over the TLS the profile requires,
and that role is no superuser and owns nothing (issue 20); every secret path the profile names holds a
value (never recorded); and on a cloud profile no forbidden infrastructure (NAT gateway, load balancer,
provisioned MSK on dev_min) exists. A probe that cannot see records its error, and its gate fails closed.

The same probes run locally (SeaweedFS, Tansu, embedded Postgres, `.fp/secrets`), kept to about a second:
one small object per bucket, one metadata request, one connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from fp_platform.contracts.evidence import EvidenceWriter, utc_now_iso
from fp_platform.handles import Handles
from fp_platform.substrate import bus, residuals
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.secrets import get_secret

Doc = dict[str, Any]
PROBE_PREFIX = "_fp_probe/substrate_ready/"  # marker objects, deleted after they read back


def _timed(probe: Callable[[], Any]) -> tuple[Any, str | None, float]:
    started = time.monotonic()
    try:
        return probe(), None, round(time.monotonic() - started, 3)
    except Exception as exc:  # a probe that cannot see is a fact for its gate, which fails closed
        return None, residuals.scan_error(exc), round(time.monotonic() - started, 3)


def probe_buckets(h: Handles, store: S3ObjectStore, platform_run_id: str) -> dict[str, Doc]:
    """Each bucket handle: a marker object written, read back equal, then deleted."""
    out = {}
    for key, bucket in sorted(h.buckets().items()):
        marker = f"{PROBE_PREFIX}{platform_run_id}".encode()
        name = f"{PROBE_PREFIX}{platform_run_id}.txt"

        def probe(bucket: str = bucket, name: str = name, marker: bytes = marker) -> bool:
            store.put(bucket, name, marker, write_once=False)
            ok = store.get(bucket, name) == marker
            store.delete(bucket, name)
            return ok

        ok, error, seconds = _timed(probe)
        out[key] = {"bucket": bucket, "writable": bool(ok), "error": error, "seconds": seconds}
    return out


def probe_topics(h: Handles, timeout_s: float) -> Doc:
    """Every topic of the registry on the broker, with its partition count against the pinned one."""
    listed, error, seconds = _timed(lambda: bus.admin(h).list_topics(timeout=timeout_s).topics)
    topics = {
        t.name: {
            "handle": t.key,
            "pinned_partitions": t.partitions,
            "partitions": len(listed[t.name].partitions) if listed and t.name in listed else None,
        }
        for t in h.topics()
    }
    return {"error": error, "seconds": seconds, "topics": topics, "bootstrap_from": _bootstrap_source(h)}


def _bootstrap_source(h: Handles) -> str:
    return "KAFKA_BOOTSTRAP_SERVERS" if h.values.get("KAFKA_BOOTSTRAP_SERVERS") else "SSM_CONFLUENT_BOOTSTRAP_PATH"


ROLE_QUERY = (
    "SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,"
    # a live session's temporary tables (IG's staging table) are the session's, not a standing ownership
    " (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid AND c.relpersistence <> 't'),"
    " (SELECT count(*) FROM pg_namespace n WHERE n.nspowner = r.oid),"
    " (SELECT count(*) FROM pg_database d WHERE d.datdba = r.oid),"
    " (SELECT count(*) FROM pg_proc p WHERE p.proowner = r.oid)"
    " FROM pg_roles r WHERE r.rolname = current_user"
)


def probe_database(h: Handles, connect: Callable[[], psycopg.Connection]) -> Doc:
    """Connect as the application role (the one the runtime uses), and read back what the server says of the
    session's TLS and of the role's powers and ownerships."""

    def probe() -> Doc:
        with connect() as conn:
            ssl = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            role = conn.execute(ROLE_QUERY).fetchone()
        names = ("user", "superuser", "createrole", "createdb", "bypassrls")
        owns = dict(zip(("tables", "schemas", "databases", "functions"), [int(x) for x in role[5:]], strict=True))
        return {
            "ssl": bool(ssl and ssl[0]),
            "ssl_version": ssl[1] if ssl else None,
            "role": dict(zip(names, role[:5], strict=True)),
            "owns": owns,
        }

    facts, error, seconds = _timed(probe)
    return {
        "error": error,
        "seconds": seconds,
        "ssl_mode": h.get("DB_SSL_MODE"),
        "tls_required": h.get("DB_SSL_MODE") in ("require", "verify-ca", "verify-full"),
        **(facts or {}),
    }


def secret_path_keys(h: Handles) -> list[str]:
    """Every secret path the profile names (a null path is a secret the profile does not use)."""
    return sorted(k for k, v in h.values.items() if k.startswith("SSM_") and k.endswith("_PATH") and v)


def probe_secrets(h: Handles) -> dict[str, Doc]:
    out = {}
    for key in secret_path_keys(h):
        value, error, _ = _timed(lambda key=key: get_secret(h, key))
        out[key] = {"path": h.get(key), "present": bool(value), "error": error}
    return out


def probe_forbidden(h: Handles) -> Doc:
    """Cloud only: what is forbidden exists nowhere in the account and region. Locally there is no account
    to hold any, and the snapshot says so."""
    if h.profile == "local":
        return {"scope": "local", "applicable": False, "error": None, "found": []}
    found, error, seconds = _timed(lambda: residuals.forbidden_infrastructure(h))
    return {
        "scope": f"aws {h.get('AWS_REGION')}",
        "applicable": True,
        "error": error,
        "seconds": seconds,
        "found": [r.to_dict() for r in found or []],
    }


def substrate_facts(
    h: Handles, store: S3ObjectStore, platform_run_id: str, connect: Callable[[], psycopg.Connection]
) -> Doc:
    """What P0's gates judge (`operate.gates.SUBSTRATE_READY`), gathered from the live substrate."""
    started = time.monotonic()
    timeout = float(h.get("SUBSTRATE_PROBE_TIMEOUT_SECONDS"))
    doc = {
        "env": h.profile,
        "probed_at_utc": utc_now_iso(),
        "buckets": probe_buckets(h, store, platform_run_id),
        "bus": probe_topics(h, timeout),
        "database": probe_database(h, connect),
        "secrets": probe_secrets(h),
        "forbidden_infrastructure": probe_forbidden(h),
    }
    return doc | {"seconds": round(time.monotonic() - started, 3)}


def handle_conformance(h: Handles, doc: Doc) -> Doc:
    """The spec's handle conformance record: each handle P0 resolved and whether it did."""
    rows = [{"handle": k, "value": b["bucket"], "resolved": b["writable"]} for k, b in doc["buckets"].items()]
    rows += [
        {"handle": t["handle"], "value": name, "resolved": t["partitions"] == t["pinned_partitions"]}
        for name, t in doc["bus"]["topics"].items()
    ]
    rows += [{"handle": k, "value": s["path"], "resolved": s["present"]} for k, s in doc["secrets"].items()]
    rows.append({"handle": "DB_NAME", "value": h.get("DB_NAME"), "resolved": doc["database"]["error"] is None})
    return {"env": h.profile, "handles": rows, "unresolved": [r["handle"] for r in rows if not r["resolved"]]}


def substrate_evidence(h: Handles, store: S3ObjectStore, platform_run_id: str) -> EvidenceWriter:
    """P0's own evidence root: the environment's substrate prefix (outside the run root, spec RPF P0.6),
    per run; the snapshot and the handle conformance record share it."""
    snapshot = h.pattern("SUBSTRATE_SNAPSHOT_PATH_PATTERN", platform_run_id=platform_run_id)
    conformance = h.pattern("HANDLE_CONFORMANCE_PATH_PATTERN", platform_run_id=platform_run_id)
    root = snapshot.rsplit("/", 1)[0] + "/"
    if conformance.rsplit("/", 1)[0] + "/" != root:
        raise ValueError(f"P0's evidence files must share one prefix: {snapshot}, {conformance}")
    return EvidenceWriter(store, h.get("S3_EVIDENCE_BUCKET"), root, platform_run_id)


def evidence_names(h: Handles, platform_run_id: str) -> tuple[str, str]:
    """The snapshot's and the conformance record's names under `substrate_evidence`'s root."""
    return tuple(  # type: ignore[return-value]
        h.pattern(k, platform_run_id=platform_run_id).rsplit("/", 1)[1]
        for k in ("SUBSTRATE_SNAPSHOT_PATH_PATTERN", "HANDLE_CONFORMANCE_PATH_PATTERN")
    )
