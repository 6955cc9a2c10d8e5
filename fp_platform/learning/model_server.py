"""The bundle's model behind SageMaker's hosting contract: `GET /ping`, `POST /invocations` (dev_full).

SageMaker runs the platform image with the argument `serve` (`fp-platform serve`) for an endpoint and for
a batch transform. The server loads the model document of `FP_BUNDLE_MODEL_REF` once, with the loader DF
uses (`substrate/bundle_models`), so an endpoint scores a feature vector exactly as DF's model step does.

`/invocations` takes `application/json` (`{"instances": [vector, ...]}` or a list of vectors) and answers
`{"scores": [...]}`; or `application/jsonlines` (a vector per line, what a batch transform sends with
`SplitType: Line`) and answers a score per line. A body it cannot read is a 400 naming the problem.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from fp_platform.contracts.features import amount_ratios
from fp_platform.learning.sagemaker_config import JSON_LINES, SERVE_PORT
from fp_platform.substrate import bundle_models

MODEL_REF_ENV = "FP_BUNDLE_MODEL_REF"
HOST_ENV = "FP_SERVE_HOST"  # SageMaker's container sets 0.0.0.0; elsewhere the default keeps it local

Model = bundle_models.LogisticModel | bundle_models.BoosterModel | bundle_models.ForestModel


class BadRequest(ValueError):
    """The request body is not feature vectors."""


def _vectors(body: bytes, content_type: str) -> list[dict[str, Any]]:
    try:
        if content_type.startswith(JSON_LINES):
            rows = [orjson.loads(line) for line in body.splitlines() if line.strip()]
        else:
            doc = orjson.loads(body)
            rows = doc["instances"] if isinstance(doc, dict) and "instances" in doc else doc
    except (orjson.JSONDecodeError, KeyError) as exc:
        raise BadRequest(f"not JSON feature vectors: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BadRequest("expected a list of feature vectors (objects of feature name to value)")
    try:  # the ratios DF derives from the vector and the amount, derived here the same way
        return [{**r, **amount_ratios(r)} for r in rows]
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"a vector has a value that is not a number: {exc}") from None


def scores(model: Model, body: bytes, content_type: str) -> tuple[bytes, str]:
    """The response body and its content type for an /invocations request."""
    rows = _vectors(body, content_type)
    try:
        values = model.score_many(rows) if rows else []
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"a vector has a value that is not a number: {exc}") from None
    if content_type.startswith(JSON_LINES):
        return b"".join(orjson.dumps(v) + b"\n" for v in values), JSON_LINES
    return orjson.dumps({"scores": values}), "application/json"


def create_app(model: Model, model_ref: str) -> FastAPI:
    app = FastAPI(title="fp_platform bundle model", description=f"Scores with {model_ref}.")

    @app.get("/ping", summary="SageMaker's health check: 200 once the model is loaded")
    async def ping() -> Response:
        return Response(orjson.dumps({"model_ref": model_ref}), media_type="application/json")

    @app.post("/invocations", summary="Scores of feature vectors (JSON or JSON lines)")
    async def invocations(request: Request) -> Response:
        try:
            body, media_type = scores(model, await request.body(), request.headers.get("content-type", ""))
        except BadRequest as exc:
            return Response(orjson.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(body, media_type=media_type)

    return app


def load(model_ref: str) -> Model:
    """The bundle's model document, read as DF reads it (the profile's object store)."""
    from fp_platform.handles import handles
    from fp_platform.substrate.object_store import S3ObjectStore

    return bundle_models.load_model(S3ObjectStore(handles()), model_ref)


def serve(model_ref: str | None = None, host: str | None = None, port: int = SERVE_PORT) -> None:
    """Load the model (failing loudly: an endpoint without its model must not pass /ping) and serve."""
    import uvicorn

    ref = model_ref or os.environ.get(MODEL_REF_ENV)
    if not ref:
        raise bundle_models.ModelUnavailable(f"no model to serve: pass --model-ref or set {MODEL_REF_ENV}")
    uvicorn.run(
        create_app(load(ref), ref),
        host=host or os.environ.get(HOST_ENV, "127.0.0.1"),
        port=port,
        log_level="warning",
    )
