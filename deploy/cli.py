"""`atelier deploy …`: serving tools (this session: run the local Triton on its own)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
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
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
