"""`atelier deploy …`: run the local Triton; publish, roll back and report model versions.

    atelier deploy publish gan runs/gan/checkpoint.pt     # validate, write gan/<N+1>/, load
    atelier deploy rollback gan [VERSION]                  # serve an earlier version again
    atelier deploy status [MODEL]                          # versions, readiness, statistics

Triton URLs (gRPC host:port): --triton-url, repeatable, else ATELIER_TRITON_URLS
(comma-separated: several servers over one shared repository), else TRITON_URL.
A locked-down repository API: ATELIER_TRITON_REPOSITORY_KEY=key=value (never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
from pathlib import Path

from deploy.triton import LocalTriton, TritonPorts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="atelier deploy")
    jobs = parser.add_subparsers(dest="job", required=True)
    serve = jobs.add_parser("triton", help="serve a model repository with the local Triton")
    serve.add_argument("--model-repository", type=Path, default=Path("model_repository"))
    serve.add_argument("--workdir", type=Path, default=Path(".atelier/triton"))
    serve.add_argument("--grpc-port", type=int, default=8001)
    serve.add_argument("--http-port", type=int, default=8000)
    serve.add_argument("--metrics-port", type=int, default=8002)
    add_version_commands(jobs)
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.job != "triton":
        return run_version_command(args, argv)
    ports = TritonPorts(args.http_port, args.grpc_port, args.metrics_port)
    asyncio.run(serve_triton(LocalTriton(args.model_repository, args.workdir, ports=ports)))
    return 0


async def serve_triton(triton: LocalTriton) -> None:
    """Run Triton until Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with triton:
        print(f"Triton ready: gRPC {triton.grpc_url}, HTTP {triton.http_url}. Ctrl-C stops it.")
        print(f"Point the bot at it with TRITON_URL={triton.grpc_url}")
        await stop.wait()


def add_version_commands(jobs: argparse._SubParsersAction) -> None:
    """The publish, rollback and status subcommands."""
    publish = jobs.add_parser("publish", help="validate a checkpoint and serve it as a new version")
    publish.add_argument("model")
    publish.add_argument(
        "source",
        type=Path,
        help="a training checkpoint (RUN_DIR/checkpoint.pt) or an exported version folder",
    )
    publish.add_argument("--keep", type=int, default=5, help="versions to keep (default 5)")
    publish.add_argument(
        "--margin", type=float, default=0.15, help="quality may be this much worse"
    )
    publish.add_argument("--allow-worse", action="store_true", help="publish despite the quality")
    publish.add_argument(
        "--latency-budget-ms", type=float, help="default: the model's (gan 2000, music 20000)"
    )
    publish.add_argument("--quality-images", type=int, default=128)
    publish.add_argument(
        "--quality-data", help="data set of the quality metric (default: the run's)"
    )
    publish.add_argument(
        "--work-side",
        type=int,
        help="style models: style larger images at this longest side "
        "and resize the result back (0: full size; default: the source's)",
    )
    publish.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        help="style_arbitrary: average the style vectors of the style "
        "image and of its mirror image (default: the source's; off before it existed)",
    )
    publish.add_argument(
        "--palette",
        type=float,
        help="style_arbitrary: move the output's colours this far (0-1) toward the style "
        "image's palette (default: the source's; 0 before it existed)",
    )
    rollback = jobs.add_parser("rollback", help="serve an earlier version (default: the previous)")
    rollback.add_argument("model")
    rollback.add_argument("version", type=int, nargs="?")
    status = jobs.add_parser("status", help="versions, readiness and statistics per version")
    status.add_argument("model", nargs="?")
    for sub in (publish, rollback, status):
        sub.add_argument("--model-repository", type=Path, default=Path("model_repository"))
        sub.add_argument("--triton-url", action="append", help="gRPC host:port (repeatable)")


def run_version_command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run publish, rollback or status; exit 1 with the reason when refused."""
    from deploy.repository import (
        DeployError,
        ModelRepository,
        TritonFleet,
        repository_headers,
        triton_urls,
    )

    repository = ModelRepository(args.model_repository)
    try:
        headers = repository_headers(os.environ.get("ATELIER_TRITON_REPOSITORY_KEY"))
        fleet = TritonFleet(triton_urls(args.triton_url, environment_urls()), headers=headers)
        if args.job == "publish":
            return asyncio.run(publish_command(args, repository, fleet, argv))
        if args.job == "rollback":
            from deploy.repository import rollback

            before, now = asyncio.run(rollback(repository, fleet, args.model, args.version))
            print(f"{args.model}: serving v{now} (was v{before})")
            return 0
        from deploy.repository import status

        for model in [args.model] if args.model else repository.models():
            print("\n".join(asyncio.run(status(repository, fleet, model)).lines()))
        return 0
    except DeployError as error:
        print(f"{args.job} refused: {error}", file=sys.stderr)
        return 1


def environment_urls() -> str | None:
    return os.environ.get("ATELIER_TRITON_URLS") or os.environ.get("TRITON_URL")


async def publish_command(args: argparse.Namespace, repository, fleet, argv: list[str]) -> int:
    from deploy.publish import publish
    from deploy.validation import ValidationOptions

    options = ValidationOptions(
        latency_budget_ms=args.latency_budget_ms,
        margin=args.margin,
        allow_worse=args.allow_worse,
        quality_images=args.quality_images,
        quality_data=args.quality_data,
        settings={
            key: getattr(args, key)
            for key in ("work_side", "mirror", "palette")
            if getattr(args, key) is not None
        },
    )
    command = shlex.join(["atelier", "deploy", *argv])
    progress = lambda line: print(line, flush=True)  # noqa: E731
    result = await publish(
        repository,
        fleet,
        args.model,
        args.source,
        options,
        keep=args.keep,
        command=command,
        progress=progress,
    )
    times = ", ".join(f"{name} {value:.2f} s" for name, value in result.seconds.items())
    print(f"published {result.model} v{result.version} ({times})")
    return 0
