"""The Ingestion Gate HTTP service (FastAPI on uvicorn): the writer boundary of the platform.

Request-level refusals (401 unauthenticated, 413 too large, 429 over the rate limit, 400 not JSON)
happen before any event is read and are receipted in `ig_request_rejections`; everything else gets
one receipt per event. The answer is sent only once those receipts are durable.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from psycopg_pool import ConnectionPool

from fp_platform.contracts.evidence import utc_now_iso
from fp_platform.contracts.payloads import envelope_json_schema
from fp_platform.control.ig import receipt_segments, reconcile
from fp_platform.control.ig.admission import AMBIGUOUS, Admitter
from fp_platform.handles import Handles
from fp_platform.substrate import bus, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.secrets import get_secret

SEGMENT_FLUSH_INTERVAL_S = 5.0


@dataclass(frozen=True)
class IgSettings:
    """What one IG process serves; defaults come from the handles registry."""

    required_run_id: str
    host: str
    port: int
    max_request_bytes: int
    rate_limit_rps: float
    rate_limit_burst: int

    @classmethod
    def from_handles(cls, h: Handles, required_run_id: str, **overrides: Any) -> IgSettings:
        base = {
            "host": h.get("IG_LISTEN_ADDR"),
            "port": int(h.get("IG_PORT")),
            "max_request_bytes": int(h.get("IG_MAX_REQUEST_BYTES")),
            "rate_limit_rps": float(h.get("IG_RATE_LIMIT_RPS")),
            "rate_limit_burst": int(h.get("IG_RATE_LIMIT_BURST")),
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(required_run_id=required_run_id, **base)


@dataclass
class TokenBucket:
    """Requests per second with a burst allowance; `take` returns seconds to wait (0 = allowed)."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self) -> float:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class Gate:
    """The running gate: admitter, bus clients, background work, health."""

    def __init__(self, h: Handles, settings: IgSettings) -> None:
        self.h = h
        self.settings = settings
        self.api_key = get_secret(h, "SSM_IG_API_KEY_PATH").encode()
        self.pool = ConnectionPool(db.dsn(h), min_size=2, max_size=8, kwargs={"autocommit": True}, open=False)
        self.producer = bus.producer(
            h,
            **{
                "linger.ms": int(h.get("KAFKA_PRODUCER_LINGER_MS")),
                "request.timeout.ms": int(h.get("KAFKA_PRODUCER_REQUEST_TIMEOUT_MS")),
                "delivery.timeout.ms": int(h.get("KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS")),
                "compression.type": h.get("KAFKA_PRODUCER_COMPRESSION_TYPE"),
            },
        )
        self.store = S3ObjectStore(h)
        self.admitter = Admitter(h, settings.required_run_id, self.pool, self.producer, self.store)
        self.bucket = TokenBucket(settings.rate_limit_rps, settings.rate_limit_burst)
        self.started_at = utc_now_iso()
        self.startup: dict[str, Any] = {"state": "starting"}
        self.last_flush: dict[str, Any] = {}
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="ig-delivery", daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def start(self) -> None:
        self.pool.open(wait=True, timeout=30)
        self._poller.start()
        consumer = bus.scan_consumer(self.h)
        try:
            counts = reconcile.reconcile(self.pool, self.producer, consumer, self.admitter.publisher, grace_s=0)
        finally:
            consumer.close()
        self.startup = {"state": "done", "reconcile": counts, "at": utc_now_iso()}

    def stop(self) -> None:
        self.producer.flush(10)
        self._stop.set()
        self.pool.close()

    def flush_segments(self) -> dict[str, Any]:
        """Write pending receipts; report what was written and the run's latest segment."""
        segments = receipt_segments.flush(self.h, self.pool, self.store)
        latest = receipt_segments.latest(self.pool, self.settings.required_run_id)
        self.last_flush = {"at": utc_now_iso(), "segments": segments, "latest": latest}
        return self.last_flush

    def unresolved(self) -> int:
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT count(*) FROM ig_admission_state WHERE state = 'IN_DOUBT' AND"
                " platform_run_id = %s AND claimed_at < now() - make_interval(secs => %s)",
                (self.settings.required_run_id, float(self.h.get("IG_RECONCILE_GRACE_SECONDS"))),
            ).fetchone()[0]

    def health(self) -> dict[str, Any]:
        reasons, state = [], "GREEN"
        try:
            unresolved = self.unresolved()
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return self._health("RED", [f"database unreachable: {exc}"])
        try:
            self.producer.list_topics(timeout=2)
        except Exception as exc:  # noqa: BLE001
            return self._health("RED", [f"event bus unreachable: {exc}"])
        if self.startup.get("state") != "done":
            state, reasons = "AMBER", ["start-up reconcile in progress"]
        if unresolved:
            state = "AMBER"
            reasons.append(f"{unresolved} publishes in doubt ({AMBIGUOUS}); run `fp-platform ig reconcile`")
        return self._health(state, reasons, unresolved_in_doubt=unresolved)

    def _health(self, state: str, reasons: list[str], **extra: Any) -> dict[str, Any]:
        return {
            "state": state,
            "reasons": reasons,
            "required_platform_run_id": self.settings.required_run_id,
            "started_at_utc": self.started_at,
            "counters": dict(self.admitter.counters),
            "last_publish_error": self.admitter.last_publish_error,
            "startup": self.startup,
            "last_segment_flush": self.last_flush,
            **extra,
        }

    def authorised(self, request: Request) -> bool:
        given = request.headers.get(self.h.get("IG_AUTH_HEADER_NAME"), "").encode()
        return hmac.compare_digest(given, self.api_key)


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status_code=status, headers=headers, media_type="application/json")


def _error(status: int, error: str, reason: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": error, "reason": reason}, status, headers)


def create_app(h: Handles, settings: IgSettings) -> FastAPI:
    gate = Gate(h, settings)

    async def flush_loop() -> None:
        while True:
            await asyncio.sleep(SEGMENT_FLUSH_INTERVAL_S)
            await anyio.to_thread.run_sync(gate.flush_segments)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(gate.start)
        flusher = asyncio.create_task(flush_loop())
        yield
        flusher.cancel()
        await anyio.to_thread.run_sync(gate.flush_segments)
        await anyio.to_thread.run_sync(gate.stop)

    app = FastAPI(
        title="fp_platform Ingestion Gate",
        version="v1",
        lifespan=lifespan,
        description="Writer boundary: auth, validation, dedupe, quarantine, durable receipts, publish.",
    )
    app.state.gate = gate
    auth_header = h.get("IG_AUTH_HEADER_NAME")
    body_schema = envelope_json_schema("#/components/schemas/{model}")
    body_defs = body_schema.pop("$defs")

    def openapi() -> dict[str, Any]:
        """FastAPI's document plus the envelope and payload schemas the push body refers to."""
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {}).setdefault("schemas", {}).update(body_defs)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi

    async def refuse(
        received_at: datetime,
        status: int,
        error: str,
        reason: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        await anyio.to_thread.run_sync(gate.admitter.record_rejection, status, error, reason, body, received_at)
        return _error(status, error, reason, headers)

    @app.post(
        h.get("IG_INGEST_PATH"),
        summary="Push one envelope or a batch",
        openapi_extra={
            "parameters": [{"name": auth_header, "in": "header", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}},
            "responses": {
                "200": {"description": "one receipt per event, in request order"},
                "400": {"description": "body is not JSON, or an empty batch"},
                "401": {"description": "missing or wrong API key"},
                "413": {"description": "body larger than IG_MAX_REQUEST_BYTES"},
                "429": {"description": "over the rate limit; see Retry-After"},
                "503": {"description": "a store is unavailable; retry later"},
            },
        },
    )
    async def push(request: Request) -> Response:
        received_at = datetime.now(UTC)  # first: receipts say when the request arrived, not when it was done
        if not gate.authorised(request):
            return await refuse(received_at, 401, "UNAUTHORIZED", f"missing or wrong {auth_header}")
        wait = gate.bucket.take()
        if wait:
            return await refuse(
                received_at,
                429,
                "RATE_LIMITED",
                f"over {settings.rate_limit_rps:g} requests/s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
            return await refuse(
                received_at, 413, "PAYLOAD_TOO_LARGE", f"{declared} bytes > {settings.max_request_bytes}"
            )
        body = await request.body()
        if len(body) > settings.max_request_bytes:
            return await refuse(
                received_at, 413, "PAYLOAD_TOO_LARGE", f"{len(body)} bytes > {settings.max_request_bytes}", body
            )
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return await refuse(received_at, 400, "MALFORMED_JSON", f"body is not JSON: {exc}", body)
        docs = doc if isinstance(doc, list) else [doc]
        if not docs:
            return await refuse(received_at, 400, "EMPTY_BATCH", "a batch needs at least one envelope", body)
        try:
            receipts = await anyio.to_thread.run_sync(gate.admitter.admit, docs, received_at)
        except Exception as exc:  # noqa: BLE001 - a store failure: nothing acknowledged, sender retries
            return _error(503, "UNAVAILABLE", f"{type(exc).__name__}: {exc}", {"Retry-After": "1"})
        counts: dict[str, int] = {}
        for r in receipts:
            counts[r.decision] = counts.get(r.decision, 0) + 1
        return _json(
            {
                "platform_run_id": settings.required_run_id,
                "counts": counts,
                "receipts": [r.to_response() for r in receipts],
            }
        )

    @app.get(h.get("IG_HEALTHCHECK_PATH"), summary="Health (authenticated): GREEN, AMBER or RED with reasons")
    async def health(request: Request) -> Response:
        received_at = datetime.now(UTC)
        if not gate.authorised(request):
            return await refuse(received_at, 401, "UNAUTHORIZED", f"missing or wrong {auth_header}")
        return _json(await anyio.to_thread.run_sync(gate.health))

    @app.get(h.get("IG_READY_PATH"), summary="Readiness probe: start-up reconcile done and stores reachable")
    async def ready() -> Response:
        state = (await anyio.to_thread.run_sync(gate.health))["state"]
        ok = gate.startup.get("state") == "done" and state != "RED"
        return _json({"ready": ok, "state": state}, 200 if ok else 503)

    @app.post(h.get("IG_FLUSH_PATH"), summary="Write pending receipts to S3 segments now (authenticated)")
    async def flush(request: Request) -> Response:
        received_at = datetime.now(UTC)
        if not gate.authorised(request):
            return await refuse(received_at, 401, "UNAUTHORIZED", f"missing or wrong {auth_header}")
        return _json(await anyio.to_thread.run_sync(gate.flush_segments))

    return app


def serve(h: Handles, settings: IgSettings) -> None:
    """Run IG in the foreground (uvloop + httptools) until interrupted."""
    import uvicorn

    uvicorn.run(
        create_app(h, settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
