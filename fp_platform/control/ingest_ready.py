"""P4 INGEST_READY: prove the running IG is healthy, refuses the unauthenticated, publishes an
admitted event to a readable offset, and writes to S3 — through its real HTTP boundary."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer

from fp_platform.contracts import ids
from fp_platform.contracts.envelope import Envelope
from fp_platform.contracts.evidence import utc_now_iso
from fp_platform.handles import Handles
from fp_platform.substrate import bus
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.secrets import get_secret


def probe(
    h: Handles, store: S3ObjectStore, consumer: Consumer, run_id: str, base_url: str | None = None
) -> dict[str, Any]:
    """Every P4 check against the IG at `base_url`; each result says what it saw."""
    base = base_url or h.get("IG_BASE_URL")
    auth = {h.get("IG_AUTH_HEADER_NAME"): get_secret(h, "SSM_IG_API_KEY_PATH")}
    http = httpx.Client(base_url=base, timeout=30)
    try:
        health = http.get(h.get("IG_HEALTHCHECK_PATH"), headers=auth)
        health_doc = health.json() if health.status_code == 200 else {"status": health.status_code}
        unauth = http.get(h.get("IG_HEALTHCHECK_PATH"))
        unauth_push = http.post(h.get("IG_INGEST_PATH"), content=b"[]", headers={"content-type": "application/json"})
        smoke = _publish_smoke(h, http, auth, consumer, run_id)
        latest = http.post(h.get("IG_FLUSH_PATH"), headers=auth).json()["latest"]
    finally:
        http.close()
    s3_ok = bool(latest) and store.exists(*latest["object_uri"].removeprefix("s3://").split("/", 1))
    return {
        "service": h.get("SVC_IG"),
        "base_url": base,
        "checked_at_utc": utc_now_iso(),
        "health": {
            "http_status": health.status_code,
            "state": health_doc.get("state"),
            "reasons": health_doc.get("reasons"),
            "required_platform_run_id": health_doc.get("required_platform_run_id"),
        },
        "auth": {
            "unauthenticated_health_status": unauth.status_code,
            "unauthenticated_health_body": unauth.json(),
            "unauthenticated_push_status": unauth_push.status_code,
            "authenticated_health_status": health.status_code,
        },
        "publish_smoke": smoke,
        "s3_smoke": {"receipt_segment": latest and latest["object_uri"], "ok": s3_ok},
    }


def _publish_smoke(
    h: Handles, http: httpx.Client, auth: dict[str, str], consumer: Consumer, run_id: str
) -> dict[str, Any]:
    """Admit one control.smoke event and read it back from the offset its receipt names."""
    now = utc_now_iso()
    env = Envelope.build(
        event_id=ids.event_id("control.smoke", run_id, now),
        event_class="control.smoke",
        pins={"platform_run_id": run_id},
        producer=h.get("COMPONENT_ID_IG"),
        payload={"purpose": "P4 publish smoke", "requested_at_utc": now},
    )
    resp = http.post(
        h.get("IG_INGEST_PATH"),
        content=orjson.dumps([env.to_dict()]),
        headers={**auth, "content-type": "application/json"},
    )
    if resp.status_code != 200:
        return {"ok": False, "detail": f"HTTP {resp.status_code}: {resp.text[:200]}"}
    receipt = resp.json()["receipts"][0]
    ref = receipt.get("eb_ref")
    if receipt["decision"] != "ADMIT" or not ref:
        return {"ok": False, "detail": f"{receipt['decision']}: {receipt.get('reason')}", "receipt": receipt}
    records = bus.read_partition(consumer, ref["topic"], ref["partition"], ref["offset"])
    first = next(records, None)
    records.close()
    read_back = (
        first is not None
        and first.offset() == ref["offset"]
        and orjson.loads(first.value())["event_id"] == env.event_id
    )
    return {
        "ok": read_back,
        "event_id": env.event_id,
        "eb_ref": ref,
        "read_back": read_back,
        "receipt_id": receipt["receipt_id"],
    }
