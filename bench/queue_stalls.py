"""Requests that Triton holds about 500 ms in its queue: the committed model configs
against the same configs with a `default_queue_policy { max_queue_size: 16 }`, in one run.

With a queue policy, tritonserver 2.51 holds some requests about 500 ms before running
them, even when they come one at a time and the model is idle; without one it does not.
This bench sends `--requests` requests one at a time to each model (`gan`: a latent;
`style`: a random 256² picture) on a tritonserver over a temporary copy of
model_repository/ (links to the version folders; only config.pbtxt is rewritten), and
counts those over 200 ms.

    .venv/bin/python -m bench.queue_stalls [--requests 200] [--model gan --model style]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import numpy as np

from bench.common import machine, request_ms
from bot.inference import InferenceClient
from bot.pipelines.style import style_names, style_weights
from deploy.contracts import GAN_LATENT_DIM
from deploy.triton import LocalTriton

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
POLICY = "  default_queue_policy { max_queue_size: 16 }\n"
STALL_MS = 200.0


def repository_copy(target: Path, models: list[str], policy: bool) -> Path:
    """model_repository/'s `models` under `target`: version folders linked, config.pbtxt
    copied, with POLICY added to its dynamic batching when `policy`."""
    for model in models:
        folder = target / model
        folder.mkdir(parents=True)
        for entry in (REPOSITORY / model).iterdir():
            if entry.name != "config.pbtxt":
                (folder / entry.name).symlink_to(entry)
        config = (REPOSITORY / model / "config.pbtxt").read_text()
        if policy:
            config = config.replace("dynamic_batching {\n", "dynamic_batching {\n" + POLICY)
        (folder / "config.pbtxt").write_text(config)
    return target


async def example_inputs(client: InferenceClient, model: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if model == "gan":
        z = rng.standard_normal((1, GAN_LATENT_DIM)).astype(np.float32)
        return {"z": z, "truncation": np.ones((1, 1), np.float32)}
    names = await style_names(client)
    weights = style_weights(names, names[0])[None]
    image = rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    return {"image": image, "style_weights": weights, "strength": np.ones((1, 1), np.float32)}


async def measure(models: list[str], requests: int, policy: bool) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        repository = repository_copy(Path(folder) / "repository", models, policy)
        triton = LocalTriton(repository, Path(folder) / "triton", models=models)
        await triton.start()
        client = InferenceClient(triton.grpc_url, timeout_s=120)
        await client.open()
        try:
            times = {}
            for model in models:
                inputs = await example_inputs(client, model)
                times[model] = await request_ms(client, model, inputs, requests)
            return times
        finally:
            await client.close()
            await triton.stop()


def row(model: str, config: str, ms: list[float]) -> str:
    p99 = sorted(ms)[min(len(ms) - 1, int(0.99 * len(ms)))]
    held = sum(m > STALL_MS for m in ms)
    return (
        f"| {model} | {config} | {statistics.median(ms):.1f} | {p99:.1f} | {max(ms):.0f} | "
        f"{held}/{len(ms)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--model", action="append", choices=["gan", "style"])
    args = parser.parse_args()
    models = args.model or ["gan", "style"]

    print(f"machine: {machine()}")
    committed = asyncio.run(measure(models, args.requests, policy=False))
    with_policy = asyncio.run(measure(models, args.requests, policy=True))
    print(
        f"\n| model | config | median ms | p99 ms | max ms | over {STALL_MS:.0f} ms |\n"
        "|---|---|---|---|---|---|"
    )
    for model in models:
        print(row(model, "committed", committed[model]))
        print(row(model, "with the queue policy", with_policy[model]))
    for model in models:
        mean = statistics.mean(with_policy[model]) / statistics.mean(committed[model])
        print(f"{model}: mean latency with the queue policy / committed = {mean:.2f}x")


if __name__ == "__main__":
    main()
