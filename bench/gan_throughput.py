"""Generation throughput through Triton at concurrency 1, 8 and 32, against in-process
batch-1 PyTorch (eager and TorchScript) measured in the same run.

Each Triton request is one image (as `/imagine` with one seed sends), so concurrency is
what lets Triton's dynamic batcher form batches.

    .venv/bin/python -m bench.gan_throughput [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import torch

from bench.common import machine
from bot.inference import InferenceClient
from bot.pipelines.imagine import imagine
from bot.settings import Settings
from bot.stack import start_triton
from deploy.contracts import latent_for_seed
from training.gan.model import load_eager_generator

REPOSITORY = Path("model_repository")


def latest_version() -> Path:
    versions = [p for p in (REPOSITORY / "gan").iterdir() if p.name.isdigit()]
    return max(versions, key=lambda p: int(p.name))


def in_process(model: torch.nn.Module, seconds: float) -> float:
    """Images per second, batch 1, in this process."""
    torch.set_num_threads(2)
    count, started = 0, time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - started < seconds:
            z = torch.from_numpy(latent_for_seed(count % 1000)[None])
            model(z, torch.ones(1, 1))
            count += 1
    return count / (time.perf_counter() - started)


async def through_triton(client: InferenceClient, concurrency: int, seconds: float) -> float:
    """Images per second with `concurrency` clients each sending one-image requests."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        seed = offset
        while time.perf_counter() < deadline:
            await imagine(client, [seed])
            seed += concurrency
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


async def run(seconds: float) -> None:
    version = latest_version()
    metadata = json.loads((version / "metadata.json").read_text())
    scripted = torch.jit.load(str(version / "model.pt"))
    eager = load_eager_generator(version)
    baselines = {"eager": in_process(eager, seconds), "torchscript": in_process(scripted, seconds)}
    results = {}
    with tempfile.TemporaryDirectory() as state:
        triton = await start_triton(Settings(state_dir=Path(state), model_repository=REPOSITORY))
        client = InferenceClient(triton.grpc_url)
        await client.open()
        try:
            await through_triton(client, 8, 1.0)  # warm-up
            for concurrency in (1, 8, 32):
                results[concurrency] = await through_triton(client, concurrency, seconds)
        finally:
            await client.close()
            await triton.stop()
    print(f"machine: {machine()}")
    print(f"model: gan v{version.name} ({metadata.get('kind', metadata.get('generator', ''))})")
    print(f"baseline in-process batch 1, eager PyTorch:   {baselines['eager']:8.1f} img/s")
    print(f"         in-process batch 1, TorchScript:     {baselines['torchscript']:8.1f} img/s")
    for concurrency, rate in results.items():
        ratio = rate / baselines["eager"]
        print(f"Triton, concurrency {concurrency:>2}: {rate:8.1f} img/s  = {ratio:5.2f}x eager")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    asyncio.run(run(parser.parse_args().seconds))


if __name__ == "__main__":
    main()
