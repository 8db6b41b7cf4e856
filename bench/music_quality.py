"""Music quality: the trained model's pieces against held-out Bach chorales and random
notes, on the statistics of training/metrics/music.py (MGEval-style, mean ± sd).

The model (the latest `model_repository/music/<version>/model.pt`, TorchScript, in this
process) writes N pieces of 16 bars from an empty grid: style 0 (chorale), keys taken
from the held-out chorales in turn, seeds 0..N-1, `--temperature`, top_k 0. The pitch-class
KL of every set is measured against the training chorales' pooled histogram. Also timed:
milliseconds per 16-bar piece in process (and through Triton with --triton, one request
at a time, gRPC), and rendering 16 bars to audio (bot.media.audio.render + encode_opus).

    .venv/bin/python -m bench.music_quality [--n 32] [--temperature 1.0] [--triton]
    .venv/bin/python -m bench.music_quality --no-model   # Bach and random notes only
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine
from deploy.contracts import STEPS_PER_BAR, grid_to_events
from training.metrics.music import (
    LABELS,
    METRICS,
    music21_key_agreement,
    pooled_histogram,
    random_baseline,
    set_metrics,
)

REPOSITORY = Path("model_repository")
BARS = 16
STEPS = BARS * STEPS_PER_BAR
TEMPO = 80.0  # quarter notes per minute, for the audio timing
Set = list[tuple[np.ndarray, int]]


def latest_model() -> Path:
    """The newest version's model.pt, or a clear exit when there is none yet."""
    folder = REPOSITORY / "music"
    versions = sorted(
        (p for p in folder.glob("*") if p.name.isdigit() and (p / "model.pt").exists()),
        key=lambda p: int(p.name),
    )
    if not versions:
        raise SystemExit(
            f"no trained music model: {folder}/<version>/model.pt does not exist yet "
            "(export one with `atelier train music`, or run with --no-model)"
        )
    return versions[-1] / "model.pt"


def model_inputs(keys: list[int], seeds: list[int], temperature: float) -> dict[str, np.ndarray]:
    """The contract's inputs for a batch of pieces written from an empty grid."""
    batch = len(keys)
    return {
        "given": np.full((batch, STEPS, 4), -1, np.int64),
        "style": np.zeros((batch, 1), np.int64),
        "key": np.array(keys, np.int64)[:, None],
        "seed": np.array(seeds, np.int64)[:, None],
        "temperature": np.full((batch, 1), temperature, np.float32),
        "top_k": np.zeros((batch, 1), np.int64),
    }


def generate(path: Path, keys: list[int], temperature: float, batch: int) -> tuple[Set, dict]:
    """The model's pieces in process, and the timings: first call and ms per piece after."""
    import torch

    model = torch.jit.load(str(path)).eval()
    pieces, seconds = [], []
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        inputs = model_inputs(chunk, list(range(start, start + len(chunk))), temperature)
        tensors = [torch.from_numpy(array) for array in inputs.values()]
        began = time.perf_counter()
        with torch.inference_mode():
            grids, _ = model(*tensors)
        seconds.append((time.perf_counter() - began) / len(chunk))
        pieces += [(grid, key) for grid, key in zip(grids.numpy(), chunk, strict=True)]
    timing = {"first_ms": seconds[0] * 1000, "batch": batch}
    if len(seconds) > 1:  # the first call includes TorchScript's profiling runs
        timing["ms_per_piece"] = statistics.median(seconds[1:]) * 1000
    return pieces, timing


async def triton_ms(path: Path, keys: list[int], temperature: float, repeats: int) -> float:
    """Median ms per 16-bar piece through Triton (gRPC, batch 1, after one warm-up).

    Triton serves a copy of the repository holding only this model version, so it times
    the same file as the in-process run (and a half-written newer version can't stop it).
    """
    from bot.inference import InferenceClient
    from bot.settings import Settings
    from bot.stack import start_triton

    with tempfile.TemporaryDirectory() as state:
        repository = Path(state) / "model_repository"
        source = path.parent.parent
        shutil.copytree(source, repository / "music", ignore=_other_versions(path.parent.name))
        settings = Settings(state_dir=Path(state), model_repository=repository)
        triton = await start_triton(settings)
        client = InferenceClient(triton.grpc_url, timeout_s=300)
        await client.open()
        try:
            await client.infer("music", model_inputs(keys[:1], [0], temperature))
            times = []
            for i in range(repeats):
                inputs = model_inputs([keys[i % len(keys)]], [i], temperature)
                began = time.perf_counter()
                await client.infer("music", inputs)
                times.append(time.perf_counter() - began)
            return statistics.median(times) * 1000
        finally:
            await client.close()
            await triton.stop()


def _other_versions(keep: str):
    """A copytree filter that leaves out every version folder but `keep`."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.isdigit() and n != keep and Path(folder).name == "music"]

    return ignore


def audio_ms(grid: np.ndarray, repeats: int = 3) -> tuple[float, str]:
    """Median ms to render 16 bars to audio and encode OGG Opus, and the renderer's name."""
    from bot.media.audio import encode_opus, fluidsynth_available, render

    events = grid_to_events(grid[:STEPS])
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        encode_opus(render(events, tempo=TEMPO))
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, "FluidSynth" if fluidsynth_available() else "sine"


def key_agreement(pieces: Set) -> float:
    """Fraction of pieces whose notes music21's own key analysis puts in the given key."""
    return float(np.mean([music21_key_agreement(grid_to_events(g), k) for g, k in pieces]))


def table(columns: dict[str, dict[str, tuple[float, float]]], bach: str, judged: str | None):
    """Markdown rows: every metric's mean ± sd per column, and the verdicts for `judged`."""
    names = list(columns)
    header = "| metric | " + " | ".join(names) + " |"
    if judged:
        header += " model within 1 sd of Bach |"
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for metric in (*METRICS[:5], "pc_kl", *METRICS[5:]):
        cells = [f"{columns[n][metric][0]:.3f} ± {columns[n][metric][1]:.3f}" for n in names]
        row = f"| {LABELS[metric]} | " + " | ".join(cells) + " |"
        if judged:
            mean, sd = columns[bach][metric]
            row += f" {'yes' if abs(columns[judged][metric][0] - mean) <= sd else 'no'} |"
        lines.append(row)
    if judged:
        faults, limit = columns[judged]["faults"][0], 2 * columns[bach]["faults"][0]
        lines.append(
            f"\nfaults ≤ 2× Bach: {'yes' if faults <= limit else 'no'} "
            f"({faults:.2f} vs {limit:.2f} per 100 beats)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="pieces to generate")
    parser.add_argument("--batch", type=int, default=4, help="pieces per model call (≤ 4)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--triton", action="store_true", help="also time through Triton")
    parser.add_argument("--triton-repeats", type=int, default=3)
    parser.add_argument("--no-model", action="store_true", help="Bach and random notes only")
    parser.add_argument("--model", type=Path, help="a model.pt (default: the newest version's)")
    args = parser.parse_args()
    path = None if args.no_model else args.model or latest_model()  # fail before slow parts

    from training.data.music import load_pieces, split

    print(f"machine: {machine()}")
    train, held_out = split(load_pieces("chorale"))
    reference = pooled_histogram(train)  # the corpus the model learned from
    bach = [(piece.grid, piece.key) for piece in held_out]
    keys = [bach[i % len(bach)][1] for i in range(args.n)]
    bach_name = f"Bach held-out (n={len(held_out)})"
    columns = {bach_name: set_metrics(bach, reference)}
    columns[f"random notes (n={args.n})"] = set_metrics(
        random_baseline(args.n, STEPS, seed=0), reference
    )
    judged = None
    if path is not None:
        pieces, timing = generate(path, keys, args.temperature, args.batch)
        judged = f"model v{path.parent.name} (n={args.n}, T={args.temperature:g})"
        columns[judged] = set_metrics(pieces, reference)
    print(
        f"\n## Music statistics, mean ± sd over pieces ({BARS}-bar generated pieces; "
        f"faults per 100 beats; KL against the {len(train)} training chorales, sd by bootstrap)"
    )
    print(table(columns, bach_name, judged))
    print(f"\nmusic21 key analysis agrees with the given key: Bach {key_agreement(bach):.2f}")
    if path is not None:
        print(
            f"music21 key analysis agrees with the requested key: model {key_agreement(pieces):.2f}"
        )
        print("\n## Speed")
        print(
            f"in process (TorchScript, batch {timing['batch']}): first call "
            f"{timing['first_ms']:.0f} ms per piece (warm-up), then "
            + (
                f"{timing['ms_per_piece']:.0f} ms per {BARS}-bar piece (median over batches)"
                if "ms_per_piece" in timing
                else "- (one batch only)"
            )
        )
        if args.triton:
            ms = asyncio.run(triton_ms(path, keys, args.temperature, args.triton_repeats))
            print(f"through Triton (gRPC, batch 1): {ms:.0f} ms per {BARS}-bar piece (median)")
    ms, renderer = audio_ms(bach[0][0] if path is None else pieces[0][0])
    print(f"audio: render {BARS} bars ({renderer}) + encode Opus: {ms:.0f} ms (median of 3)")


if __name__ == "__main__":
    main()
