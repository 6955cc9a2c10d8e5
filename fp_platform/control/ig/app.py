"""The Ingestion Gate HTTP service (FastAPI on uvicorn): the writer boundary of the platform.

Request-level refusals (401 unauthenticated, 429 over a rate limit, 415 not JSON by its Content-Type,
413 too large, even while streaming, 400 not JSON or nested deeper than IG_MAX_JSON_DEPTH) happen
before any event is read and are receipted in `ig_request_rejections`; everything else gets one
receipt per event. The answer is sent only once those receipts are durable. Unauthenticated requests
have their own, small rate limit: within it each is receipted; beyond it they are answered 429 and
receipted as one summary row per segment flush, so a flood costs no database write per request.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
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
from fp_platform.control.ig.limits import shape
from fp_platform.control.settings import IngestSettings
from fp_platform.handles import Handles
from fp_platform.substrate import bus, db
from fp_platform.substrate.object_store import S3ObjectStore
from fp_platform.substrate.secrets import get_secret
from fp_platform.substrate.settings import BusSettings

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
    unauth_rate_limit_rps: float
    unauth_rate_limit_burst: int
    max_json_depth: int

    @classmethod
    def from_handles(cls, h: Handles, required_run_id: str, **overrides: Any) -> IgSettings:
        knobs = IngestSettings.load(h)
        base = {
            "host": h.get("IG_LISTEN_ADDR"),
            "port": int(h.get("IG_PORT")),
            "max_request_bytes": knobs.max_request_bytes,
            "rate_limit_rps": knobs.rate_limit_rps,
            "rate_limit_burst": knobs.rate_limit_burst,
            "unauth_rate_limit_rps": knobs.unauth_rate_limit_rps,
            "unauth_rate_limit_burst": knobs.unauth_rate_limit_burst,
            "max_json_depth": knobs.max_json_depth,
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
        self.pool = ConnectionPool(
            db.dsn(h),
            min_size=2,
            max_size=8,
            # custom plans only: a generic plan for "this run" is planned for an average run, and hashes
            # every receipt of the largest ones where a young run needs a few index probes
            kwargs={"autocommit": True, "prepare_threshold": None},
            open=False,
        )
        bus_knobs = BusSettings.load(h)
        self.producer = bus.producer(
            h,
            **{
                "linger.ms": bus_knobs.producer_linger_ms,
                "request.timeout.ms": bus_knobs.producer_request_timeout_ms,
                "delivery.timeout.ms": bus_knobs.producer_delivery_timeout_ms,
                "compression.type": bus_knobs.producer_compression_type,
                "message.max.bytes": bus_knobs.message_max_bytes,
            },
        )
        self.store = S3ObjectStore(h)
        self.admitter = Admitter(h, settings.required_run_id, self.pool, self.producer, self.store)
        self.bucket = TokenBucket(settings.rate_limit_rps, settings.rate_limit_burst)
        self.unauth_bucket = TokenBucket(settings.unauth_rate_limit_rps, settings.unauth_rate_limit_burst)
        self.unauth_limited = 0  # answered 429 without a row of their own since the last summary row
        self.unauth_limited_since: datetime | None = None
        self._unauth_lock = threading.Lock()
        self.ready_cache_s = IngestSettings.load(h).ready_cache_seconds
        self._ready: tuple[float, dict[str, Any]] = (-math.inf, {})
        self._ready_lock = threading.Lock()
        self.started_at = utc_now_iso()
        self.startup: dict[str, Any] = {"state": "starting"}
        self.last_flush: dict[str, Any] = {}
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="ig-delivery", daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def start(self) -> None:
        """Open the stores, learn the broker's record limit, reconcile this gate's own run (only: another
        run's claims belong to its own gate, which may be live) and note what stays in doubt."""
        self.pool.open(wait=True, timeout=30)
        self._poller.start()
        self.admitter.max_record_bytes = reconcile.record_limit(self.h, bus.admin(self.h))
        run_id = self.settings.required_run_id
        consumer = bus.scan_consumer(self.h)
        try:
            counts = reconcile.reconcile(
                self.pool,
                self.producer,
                consumer,
                self.admitter.publisher,
                run_id,
                grace_s=0,
                h=self.h,
                store=self.store,
                max_record_bytes=self.admitter.max_record_bytes,
            )
        finally:
            consumer.close()
        if counts["unresolved"]:
            self.admitter.mark_in_doubt(
                (c["event_class"], c["event_id"]) for c in reconcile.in_doubt(self.pool, run_id, 0)
            )
        self.startup = {
            "state": "done",
            "reconcile": counts,
            "resolved_before": _iso(reconcile.advance_mark(self.pool, run_id)),
            "max_record_bytes": self.admitter.max_record_bytes,
            "at": utc_now_iso(),
        }

    def stop(self) -> None:
        self.producer.flush(10)
        self._stop.set()
        self.pool.close()

    def flush_segments(self) -> dict[str, Any]:
        """Write pending receipts; report what was written and the run's latest segment."""
        self.flush_unauth_summary()
        segments = receipt_segments.flush(self.h, self.pool, self.store)
        latest = receipt_segments.latest(self.pool, self.settings.required_run_id)
        # the next start-up reconcile reads only the claims after this mark
        mark = reconcile.advance_mark(self.pool, self.settings.required_run_id)
        self.last_flush = {"at": utc_now_iso(), "segments": segments, "latest": latest, "resolved_before": _iso(mark)}
        return self.last_flush

    def unauthenticated(self, received_at: datetime) -> bool:
        """True when this unauthenticated request may have its own receipt row; else it is counted into
        the next summary row."""
        if not self.unauth_bucket.take():
            return True
        with self._unauth_lock:
            self.unauth_limited += 1
            self.unauth_limited_since = self.unauth_limited_since or received_at
        return False

    def flush_unauth_summary(self) -> None:
        """One receipt row for the unauthenticated requests answered 429 since the last one."""
        with self._unauth_lock:
            n, since = self.unauth_limited, self.unauth_limited_since
            self.unauth_limited, self.unauth_limited_since = 0, None
        if n:
            reason = f"{n} unauthenticated requests over {self.settings.unauth_rate_limit_rps:g}/s answered 429"
            try:
                self.admitter.record_rejection(429, "UNAUTHENTICATED_RATE_LIMITED", reason, None, since)
            except Exception:  # noqa: BLE001 - keep the count for the next flush rather than lose it
                with self._unauth_lock:
                    self.unauth_limited += n
                    self.unauth_limited_since = min(since, self.unauth_limited_since or since)
                raise

    MAX_DOUBT_CHECKED = 1000

    def unresolved(self) -> int:
        """Claims of this run still in doubt: the ones this gate left without a terminal receipt (start-up
        reconcile seeds them), re-checked by key — O(in doubt), never a scan of the run's claims. Those an
        operator's reconcile settled meanwhile drop out."""
        doubt = self.admitter.in_doubt()
        if not doubt:
            return 0
        checked = doubt[: self.MAX_DOUBT_CHECKED]
        with self.pool.connection() as conn:
            resolved = conn.execute(
                "SELECT t.c, t.i FROM unnest(%s::text[], %s::text[]) AS t(c, i) WHERE EXISTS (SELECT 1 FROM"
                " ig_receipts r WHERE r.platform_run_id = %s AND r.event_class = t.c AND r.event_id = t.i AND"
                " r.decision = 'ADMIT') OR EXISTS (SELECT 1 FROM ig_receipts r WHERE r.platform_run_id = %s AND"
                " r.event_class = t.c AND r.event_id = t.i AND r.decision = 'QUARANTINE' AND r.source = 'reconcile')",
                ([c for c, _ in checked], [i for _, i in checked], self.settings.required_run_id)
                + (self.settings.required_run_id,),
            ).fetchall()
        return self.admitter.resolved((c, i) for c, i in resolved)

    def health(self) -> dict[str, Any]:
        reasons, state = [], "GREEN"
        try:
            with self.pool.connection() as conn:
                conn.execute("SELECT 1")
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

    def readiness(self) -> dict[str, Any]:
        """Start-up done and the stores reachable, probed at most once per IG_READY_CACHE_SECONDS: the
        probe has no key, so its cost must not grow with how often it is called."""
        at, doc = self._ready
        if time.monotonic() - at < self.ready_cache_s:
            return doc
        with self._ready_lock:
            at, doc = self._ready
            if time.monotonic() - at < self.ready_cache_s:
                return doc
            state, reasons = "GREEN", []
            try:
                with self.pool.connection(timeout=2) as conn:
                    conn.execute("SELECT 1")
                self.producer.list_topics(timeout=2)
            except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
                state, reasons = "RED", [f"store unreachable: {type(exc).__name__}"]
            ok = self.startup.get("state") == "done" and state != "RED"
            doc = {"ready": ok, "state": state, "reasons": reasons}
            self._ready = (time.monotonic(), doc)
            return doc

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


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status_code=status, headers=headers, media_type="application/json")


def _error(status: int, error: str, reason: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": error, "reason": reason}, status, headers)


def create_app(h: Handles, settings: IgSettings) -> FastAPI:
    gate = Gate(h, settings)

    async def flush_loop() -> None:
        while True:
            await asyncio.sleep(SEGMENT_FLUSH_INTERVAL_S)
            try:
                await anyio.to_thread.run_sync(gate.flush_segments)
            except Exception as exc:  # noqa: BLE001 - a store blip must not end the loop; the next flush retries
                gate.last_flush = {"at": utc_now_iso(), "error": f"{type(exc).__name__}: {exc}"}

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

    async def unauthorised(received_at: datetime) -> Response:
        if gate.unauthenticated(received_at):
            return await refuse(received_at, 401, "UNAUTHORIZED", f"missing or wrong {auth_header}")
        return _error(
            429,
            "RATE_LIMITED",
            f"unauthenticated requests over {settings.unauth_rate_limit_rps:g}/s",
            {"Retry-After": "1"},
        )

    @app.post(
        h.get("IG_INGEST_PATH"),
        summary="Push one envelope or a batch",
        openapi_extra={
            "parameters": [{"name": auth_header, "in": "header", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}},
            "responses": {
                "200": {"description": "one receipt per event, in request order"},
                "400": {"description": "body is not JSON, an empty batch, or nested deeper than IG_MAX_JSON_DEPTH"},
                "401": {"description": "missing or wrong API key"},
                "413": {"description": "body larger than IG_MAX_REQUEST_BYTES (with or without Content-Length)"},
                "415": {"description": "Content-Type is not application/json"},
                "429": {"description": "over the rate limit (or the unauthenticated one); see Retry-After"},
                "503": {"description": "a store is unavailable; retry later"},
            },
        },
    )
    async def push(request: Request) -> Response:
        received_at = datetime.now(UTC)  # first: receipts say when the request arrived, not when it was done
        if not gate.authorised(request):
            return await unauthorised(received_at)
        wait = gate.bucket.take()
        if wait:
            return await refuse(
                received_at,
                429,
                "RATE_LIMITED",
                f"over {settings.rate_limit_rps:g} requests/s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            return await refuse(
                received_at, 415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type {media or '(none)'!r}: send application/json"
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
            return await refuse(
                received_at, 413, "PAYLOAD_TOO_LARGE", f"{declared} bytes > {settings.max_request_bytes}"
            )
        chunks, size = [], 0
        async for chunk in request.stream():  # the limit holds while a body without Content-Length streams in
            size += len(chunk)
            if size > settings.max_request_bytes:
                return await refuse(
                    received_at,
                    413,
                    "PAYLOAD_TOO_LARGE",
                    f"more than {settings.max_request_bytes} bytes (refused at {size} while streaming)",
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return await refuse(received_at, 400, "MALFORMED_JSON", f"body is not JSON: {exc}", body)
        depth = shape(doc, settings.max_json_depth).depth
        if depth > settings.max_json_depth:
            return await refuse(
                received_at,
                400,
                "TOO_DEEP",
                f"JSON nested deeper than IG_MAX_JSON_DEPTH={settings.max_json_depth}",
                body,
            )
        docs = doc if isinstance(doc, list) else [doc]
        if not docs:
            return await refuse(received_at, 400, "EMPTY_BATCH", "a batch needs at least one envelope", body)
        try:
            receipts = await anyio.to_thread.run_sync(gate.admitter.admit, docs, received_at, b"\\u0000" in body)
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

    async def authenticated(request: Request, work: Callable[[], dict[str, Any]]) -> Response:
        """`work`'s document for a caller with the key; a receipted 401 otherwise."""
        received_at = datetime.now(UTC)
        if not gate.authorised(request):
            return await unauthorised(received_at)
        return _json(await anyio.to_thread.run_sync(work))

    @app.get(h.get("IG_HEALTHCHECK_PATH"), summary="Health (authenticated): GREEN, AMBER or RED with reasons")
    async def health(request: Request) -> Response:
        return await authenticated(request, gate.health)

    @app.get(h.get("IG_READY_PATH"), summary="Readiness probe: start-up reconcile done and stores reachable")
    async def ready() -> Response:
        doc = await anyio.to_thread.run_sync(gate.readiness)
        return _json(doc, 200 if doc["ready"] else 503)

    @app.post(h.get("IG_FLUSH_PATH"), summary="Write pending receipts to S3 segments now (authenticated)")
    async def flush(request: Request) -> Response:
        return await authenticated(request, gate.flush_segments)

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
