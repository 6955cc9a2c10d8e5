"""`fp-platform serve`: a bundle's model on SageMaker's hosting contract (what an endpoint and a batch
transform run in the platform image; `learning/model_server.py`)."""

from __future__ import annotations

import argparse

from fp_platform.cli.console import CommandError


def cmd_serve(args: argparse.Namespace) -> int:
    from fp_platform.learning import model_server
    from fp_platform.substrate.bundle_models import ModelUnavailable

    try:
        model_server.serve(args.model_ref, args.host, args.port)
    except ModelUnavailable as exc:
        raise CommandError(str(exc), 1) from None
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `serve` to the `fp-platform` parser."""
    from fp_platform.learning.sagemaker_config import SERVE_PORT

    p = sub.add_parser(
        "serve",
        help="serve a bundle's model: GET /ping, POST /invocations (SageMaker's container contract)",
    )
    p.add_argument("--model-ref", help="s3:// URI of the model document (default: $FP_BUNDLE_MODEL_REF)")
    p.add_argument("--host", help="bind address (default: $FP_SERVE_HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, default=SERVE_PORT, help=f"port (default {SERVE_PORT}, SageMaker's)")
    p.set_defaults(func=cmd_serve)
