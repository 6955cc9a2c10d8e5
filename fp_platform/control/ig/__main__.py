"""`python -m fp_platform.control.ig --run-id ID`: the IG daemon entrypoint (what the supervisor
starts; `fp-platform ig serve` is the same)."""

from __future__ import annotations

import argparse
import os
import sys

from fp_platform.handles import handles


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    env_key = handles().get("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")
    parser.add_argument(
        "--run-id", default=os.environ.get(env_key), help=f"the platform_run_id this gate admits (default: ${env_key})"
    )
    parser.add_argument("--host", help="bind address (default: IG_LISTEN_ADDR)")
    parser.add_argument("--port", type=int, help="port (default: IG_PORT)")
    parser.add_argument("--max-request-bytes", type=int, help="413 above this (default: IG_MAX_REQUEST_BYTES)")
    parser.add_argument("--rate-limit-rps", type=float, help="429 above this (default: IG_RATE_LIMIT_RPS)")
    parser.add_argument("--rate-limit-burst", type=int, help="burst allowance (default: IG_RATE_LIMIT_BURST)")


def serve_from_args(args: argparse.Namespace) -> int:
    from fp_platform.control.ig.app import IgSettings, serve  # FastAPI only when serving, not for --help

    h = handles()
    if not args.run_id:
        print(
            f"error: no run to admit: pass --run-id or set {h.get('REQUIRED_PLATFORM_RUN_ID_ENV_KEY')}", file=sys.stderr
        )
        return 2
    settings = IgSettings.from_handles(
        h,
        args.run_id,
        host=args.host,
        port=args.port,
        max_request_bytes=args.max_request_bytes,
        rate_limit_rps=args.rate_limit_rps,
        rate_limit_burst=args.rate_limit_burst,
    )
    serve(h, settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_platform.control.ig", description="Run the Ingestion Gate.")
    add_serve_arguments(parser)
    return serve_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
