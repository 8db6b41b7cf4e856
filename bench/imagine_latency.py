"""Latency of `/imagine`, split into time in Triton and time in the bot, against a baseline.

Runs the whole stack (local Triton, the Discord stand-in, the real bot), sends N
`/imagine seed:i` interactions one after another and measures, per interaction:
  end to end   stand-in sends INTERACTION_CREATE -> the PNG followup arrives
  gRPC call    the bot's own inference client round trip inside that interaction
  Triton       the server's time per request over the same interactions (its statistics:
               queue + compute), so gRPC call - Triton = transport and (de)serialisation
  bot          end to end minus the gRPC call (Discord plumbing, job rows, PNG encoding)
Baseline in the same run: the same TorchScript file called in-process at batch 1.

    .venv/bin/python -m bench.imagine_latency [--n 40]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import machine, summary
from bot.inference import InferenceClient
from bot.pipelines.imagine import imagine
from bot.settings import Settings
from bot.stack import running_stack
from deploy.contracts import latent_for_seed

MODEL_PT = Path("model_repository/gan/1/model.pt")


def in_process_baseline(seeds: list[int]) -> list[float]:
    """Batch-1 calls of the TorchScript generator in this process."""
    torch.set_num_threads(2)
    model = torch.jit.load(str(MODEL_PT))
    times = []
    with torch.inference_mode():
        for seed in seeds:
            z = torch.from_numpy(latent_for_seed(seed)[None])
            started = time.perf_counter()
            model(z, torch.ones(1, 1))
            times.append(time.perf_counter() - started)
    return times


async def server_seconds_per_request(client: InferenceClient) -> tuple[int, float]:
    stats = await client.client.get_inference_statistics("gan", as_json=True)
    success = stats["model_stats"][0]["inference_stats"]["success"]
    return int(success.get("count", 0)), int(success.get("ns", 0)) / 1e9


async def run(n: int) -> None:
    seeds = list(range(1000, 1000 + n))
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(state_dir=Path(state), discord_token=None)
        async with running_stack(settings, guild_ready_timeout=0.1) as stack:
            standin, client = stack.standin, stack.bot.inference
            assert standin is not None
            await imagine(client, [0])  # warm-up
            grpc_calls = record_call_times(client)
            count0, ns0 = await server_seconds_per_request(client)
            end_to_end = []
            for seed in seeds:
                handle = await standin.invoke("imagine", {"seed": seed})
                await handle.wait_for(lambda m: not m.deferred, timeout=60)
                end_to_end.append(time.monotonic() - handle.created_at)
            count1, ns1 = await server_seconds_per_request(client)
    triton_ms = (ns1 - ns0) / max(1, count1 - count0) * 1000
    baseline = in_process_baseline(seeds)
    bot = [e - g for e, g in zip(end_to_end, grpc_calls, strict=True)]
    print(f"machine: {machine()}")
    print(f"/imagine end to end     {summary(end_to_end)}")
    print(f"  gRPC call to Triton   {summary(grpc_calls)}  mean {np.mean(grpc_calls) * 1e3:.2f} ms")
    print(f"    inside Triton       mean {triton_ms:7.2f} ms per request (server statistics)")
    print(f"  in the bot            {summary(bot)}")
    print(f"baseline: in-process TorchScript batch 1  {summary(baseline)}")
    ratio = np.median(grpc_calls) / np.median(baseline)
    print(f"ratio: Triton gRPC call / in-process call = {ratio:.2f}x (median)")
    ratio = np.median(end_to_end) / np.median(baseline)
    print(f"ratio: /imagine end to end / in-process call = {ratio:.2f}x (median)")


def record_call_times(client: InferenceClient) -> list[float]:
    """Wrap the bot's client so that every infer() appends its round trip to a list."""
    times: list[float] = []
    infer = client.infer

    async def timed(*args, **kwargs):
        result = await infer(*args, **kwargs)
        times.append(result.seconds)
        return result

    client.infer = timed  # type: ignore[method-assign]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    asyncio.run(run(parser.parse_args().n))


if __name__ == "__main__":
    main()
