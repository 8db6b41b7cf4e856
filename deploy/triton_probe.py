"""Triton's per-model readiness, as a container health check (standard library only).

    python3 triton_probe.py [--url http://127.0.0.1:8000] [MODEL ...]

Exit 0 when the server is live and every named model (else those in ATELIER_MODELS,
comma-separated) answers 200 on `/v2/models/<name>/ready`; exit 1 and say which one is
not ready otherwise. With --strict-readiness=false, `/v2/health/ready` only says the
server is up, so per-model readiness is what tells a replica can serve. The Triton image
copies this file as it is (deploy/compose/Dockerfile.triton).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def answers_ok(url: str, timeout_s: float) -> bool:
    """True when GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def not_ready(base_url: str, models: list[str], timeout_s: float = 2.0) -> list[str]:
    """What is not ready: "server" when it is not live, else the models not ready."""
    base = base_url.rstrip("/")
    if not answers_ok(f"{base}/v2/health/live", timeout_s):
        return ["server"]
    return [m for m in models if not answers_ok(f"{base}/v2/models/{m}/ready", timeout_s)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Triton's HTTP address")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    parser.add_argument("models", nargs="*")
    args = parser.parse_args(argv)
    listed = os.environ.get("ATELIER_MODELS", "")
    models = args.models or [m.strip() for m in listed.split(",") if m.strip()]
    missing = not_ready(args.url, models, args.timeout)
    if missing:
        print(f"not ready: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
