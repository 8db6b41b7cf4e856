"""Train the image GAN: `atelier train gan …`.

One `TrainConfig`; `GANTrainer` owns the networks, optimisers, EMA generator, random state
and data order, and `train_step` is one GAN update; `train` is the loop around it
(progress bar, sample grids, SWD, checkpoints, plot). A checkpoint holds everything that
decides the next step, so a resumed run continues bit for bit where it stopped (on CPU).

    atelier train gan --minutes 20 --out runs/gan          # emoji, 64x64
    atelier train gan --resume --out runs/gan --minutes 10 # ten more minutes
    atelier train gan --eval runs/gan/checkpoint.pt        # SWD against held-out images
    atelier train gan --export runs/gan/checkpoint.pt --version-dir model_repository/gan/2
    atelier train gan --init-from model_repository/gan/2 --data DIR --steps 500 --out runs/ft
                                                           # fine-tune the served generator
`--progress-json` prints one JSON line per sample grid (step, losses, grid path) for a
watching process such as the bot's `/admin retrain`.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from deploy.contracts import GAN_IMAGE_SIZE, latent_for_seed
from training.data.emoji import load_emoji
from training.data.images import DEFAULT_CACHE, holdout_split, load_folder
from training.gan.model import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    diff_augment,
    recalibrate_batch_norm,
    update_ema,
)
from training.metrics.swd import SWD, sliced_wasserstein
from training.plots import image_grid, line_chart, smooth

CHECKPOINT = "checkpoint.pt"
SAMPLE_SEEDS = range(64)  # the grid's latents: latent_for_seed(0..63), as the bot serves them
EVAL_SEED = 1_000_003  # latents and patch positions of every SWD evaluation


@dataclass
class TrainConfig:
    data: str = "emoji"  # "emoji" or a folder of images
    resolution: int = 64
    batch_size: int = 64
    seed: int = 0
    g_width: int = 32
    d_width: int = 32
    loss: str = "bce"  # "bce" (non-saturating, as DCGAN) or "hinge"
    spectral_norm: bool = False
    augment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.0  # 0 = no EMA generator
    holdout: float = 0.1  # share of the data kept back as real images for SWD

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(width=self.g_width, image_size=self.resolution)

    def discriminator_config(self) -> DiscriminatorConfig:
        return DiscriminatorConfig(self.d_width, self.resolution, self.spectral_norm)


# pytorch/examples dcgan/main.py with ngf = ndf = 32: BCE, Adam 2e-4 (0.5, 0.999), no EMA.
DCGAN_REFERENCE = TrainConfig()
# Atelier's GAN, chosen by measurement at equal wall time on a 2-core CPU (bench/gan_quality.py
# --arms ...): an EMA generator, half the width (16) so that many more steps fit in the time,
# batch 32 for twice the updates per image, and DiffAugment's translation for the discriminator.
ATELIER = TrainConfig(g_width=16, d_width=16, batch_size=32, augment="translation", ema_decay=0.999)


@dataclass
class Dataset:
    train: np.ndarray  # uint8 [N, H, W, 3]
    held_out: np.ndarray
    sha256: str  # of the whole set, before the split
    skipped: int = 0


def load_dataset(config: TrainConfig, cache_dir: Path = DEFAULT_CACHE) -> Dataset:
    """The images named by config.data at config.resolution, split into train and held-out."""
    if config.data == "emoji":
        images = load_emoji(config.resolution, cache_dir)
    else:
        images = load_folder(Path(config.data), config.resolution, cache_dir)
    if len(images.images) < 2:
        raise ValueError(f"{config.data}: fewer than two readable images")
    train_idx, held_idx = holdout_split(len(images.images), config.holdout, seed=0)
    return Dataset(images.images[train_idx], images.images[held_idx], images.sha256, images.skipped)


class GANTrainer:
    """Networks, optimisers, EMA, random state and data order of one GAN run."""

    def __init__(self, config: TrainConfig, images: np.ndarray, device: torch.device) -> None:
        self.config, self.device = config, device
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        self.generator = Generator(config.generator_config()).to(device)
        self.discriminator = Discriminator(config.discriminator_config()).to(device)
        self.ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), config.lr_g, config.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), config.lr_d, config.betas)
        self.rng = torch.Generator(device).manual_seed(config.seed)  # latents, order, augment
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
        self.batches_per_epoch = max(1, len(images) // config.batch_size)
        self.step, self.epoch, self.position = 0, 0, 0
        self.order = self.shuffle()
        self.seconds = 0.0  # training time so far, over every resume
        self.history: dict[str, list[float]] = {"loss_d": [], "loss_g": []}
        self.swd_log: list[tuple[int, float]] = []

    def shuffle(self) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=self.rng, device=self.device)

    def next_batch(self) -> torch.Tensor:
        """The next batch of real images in [-1, 1]; a new permutation every epoch."""
        if self.position == self.batches_per_epoch:
            self.epoch, self.position, self.order = self.epoch + 1, 0, self.shuffle()
        size = min(self.config.batch_size, len(self.images))
        index = self.order[self.position * size : (self.position + 1) * size]
        self.position += 1
        return self.images[index].float() / 127.5 - 1.0

    def train_step(self) -> tuple[float, float]:
        """One discriminator and one generator update; returns (loss_d, loss_g)."""
        real = self.next_batch()
        z = torch.randn(
            len(real), GeneratorConfig.latent_dim, generator=self.rng, device=self.device
        )
        fake = self.generator(z)

        d_real = self.discriminator(self.augment(real))
        d_fake = self.discriminator(self.augment(fake.detach()))
        loss_d = discriminator_loss(self.config.loss, d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        loss_g = generator_loss(self.config.loss, self.discriminator(self.augment(fake)))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

        self.step += 1
        if self.config.ema_decay:  # warm-up: early on the average follows the weights closely
            decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
            update_ema(self.ema, self.generator, decay)
        losses = (loss_d.item(), loss_g.item())
        self.history["loss_d"].append(losses[0])
        self.history["loss_g"].append(losses[1])
        return losses

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return diff_augment(images, self.config.augment, self.rng)

    def sampler(self) -> Generator:
        """A copy of the generator to sample from (EMA weights when kept), batch norm
        recalibrated on fixed latents, in eval mode. Training state is left untouched."""
        model = copy.deepcopy(self.ema if self.config.ema_decay else self.generator)
        latents = torch.from_numpy(eval_latents(256, EVAL_SEED + 1)).to(self.device)
        recalibrate_batch_norm(model, latents)
        return model

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "data_order": {"epoch": self.epoch, "position": self.position, "order": self.order},
            "step": self.step,
            "seconds": self.seconds,
            "history": self.history,
            "swd_log": self.swd_log,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        order = state["data_order"]
        self.epoch, self.position = order["epoch"], order["position"]
        self.order = order["order"].to(self.device)
        self.step, self.seconds = state["step"], state["seconds"]
        self.history, self.swd_log = state["history"], state["swd_log"]


def discriminator_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()  # BCE on logits


def generator_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()  # non-saturating: BCE against the "real" label


def eval_latents(n: int, seed: int = EVAL_SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, GeneratorConfig.latent_dim), np.float32)


@torch.no_grad()
def generate(model: torch.nn.Module, latents: np.ndarray, batch: int = 128) -> np.ndarray:
    """uint8 [N, H, W, 3] images of `latents` from an eval-mode generator."""
    device = next(model.parameters()).device
    chunks = []
    for chunk in torch.from_numpy(latents).split(batch):
        images = model(chunk.to(device)).clamp(-1, 1)
        chunks.append(((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu())
    return torch.cat(chunks).numpy()


def evaluate(trainer: GANTrainer, held_out: np.ndarray, count: int = 0) -> SWD:
    """SWD between held-out real images and as many generated ones (fixed latents)."""
    real = held_out[:count] if count else held_out
    fakes = generate(trainer.sampler(), eval_latents(len(real)))
    return sliced_wasserstein(fakes, real, seed=EVAL_SEED)


def real_floor(data: Dataset) -> SWD:
    """SWD between a random sample of training images and the held-out ones."""
    pick = np.random.default_rng(EVAL_SEED).permutation(len(data.train))[: len(data.held_out)]
    return sliced_wasserstein(data.train[np.sort(pick)], data.held_out, seed=EVAL_SEED)


def sample_grid(trainer: GANTrainer, path: Path) -> None:
    latents = np.stack([latent_for_seed(seed) for seed in SAMPLE_SEEDS])
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(generate(trainer.sampler(), latents)).save(path)


def save_checkpoint(trainer: GANTrainer, run_dir: Path, extra: dict[str, Any]) -> Path:
    """Write RUN_DIR/checkpoint.pt atomically (a crash never leaves half a file)."""
    path = run_dir / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    torch.save({**trainer.state_dict(), **extra}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def config_from(state: dict[str, Any]) -> TrainConfig:
    values = dict(state["config"])
    values["betas"] = tuple(values["betas"])
    return TrainConfig(**values)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def save_plot(trainer: GANTrainer, path: Path) -> None:
    """Smoothed losses and the logged SWD against steps."""
    steps = list(range(1, trainer.step + 1))
    losses = {name: (steps, smooth(values)) for name, values in trainer.history.items()}
    swd = {"SWD x1e3 (EMA)": ([s for s, _ in trainer.swd_log], [v for _, v in trainer.swd_log])}
    line_chart([("losses (running mean of 50 steps)", losses), ("SWD x1e3 vs held-out", swd)], path)


@dataclass
class RunOptions:
    run_dir: Path
    steps: int = 0  # total steps to reach (0: no limit)
    minutes: float = 0.0  # wall time for this invocation (0: no limit)
    sample_every: int = 500
    eval_every: int = 2000  # SWD on a few held-out images (0: never)
    eval_images: int = 128
    resume: bool = False
    command: str = ""  # the command line that started the run, for the exported metadata
    progress: bool = True
    progress_json: bool = False  # a JSON line on stdout per sample grid (for a watcher)
    init_from: Path | None = None  # an exported version folder: start from its generator


def train(config: TrainConfig, options: RunOptions, cache_dir: Path = DEFAULT_CACHE) -> GANTrainer:
    """The training loop; stops at options.steps or after options.minutes, whichever first."""
    run_dir = options.run_dir
    state = load_checkpoint(run_dir / CHECKPOINT) if options.resume else None
    if state is not None:
        config = config_from(state)
    data = load_dataset(config, cache_dir)
    trainer = GANTrainer(config, data.train, device())
    if state is not None:
        trainer.load_state_dict(state)
    elif options.init_from:
        init_generator(trainer, options.init_from)
    command = options.command
    if state is not None and state.get("command"):  # every command that made the run
        command = f"{state['command']} && {command}"
    extra = {"data_sha256": data.sha256, "command": command}
    print(
        f"data: {config.data}, {len(data.train)} train + {len(data.held_out)} held out "
        f"({data.skipped} files skipped), sha256 {data.sha256[:12]}; device {trainer.device}"
    )
    deadline = time.monotonic() + options.minutes * 60 if options.minutes else float("inf")
    bar = tqdm(total=options.steps or None, initial=trainer.step, disable=not options.progress)
    try:
        while (not options.steps or trainer.step < options.steps) and time.monotonic() < deadline:
            started = time.monotonic()
            loss_d, loss_g = trainer.train_step()
            trainer.seconds += time.monotonic() - started
            bar.update()
            bar.set_postfix(loss_d=f"{loss_d:.3f}", loss_g=f"{loss_g:.3f}", refresh=False)
            if trainer.step % options.sample_every == 0:
                grid = run_dir / "samples" / f"step_{trainer.step:06d}.png"
                sample_grid(trainer, grid)
                save_checkpoint(trainer, run_dir, extra)
                if options.progress_json:
                    report_progress(trainer, options, grid, loss_d, loss_g)
            if options.eval_every and trainer.step % options.eval_every == 0:
                swd = evaluate(trainer, data.held_out, options.eval_images)
                trainer.swd_log.append((trainer.step, swd.average))
                bar.write(f"step {trainer.step}: SWD x1e3 {swd} ({options.eval_images} images)")
    except KeyboardInterrupt:
        bar.write("interrupted: saving the checkpoint")
    finally:
        bar.close()
        run_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(trainer, run_dir, extra)
        sample_grid(trainer, run_dir / "samples" / f"step_{trainer.step:06d}.png")
        save_plot(trainer, run_dir / "training.png")
    rate = trainer.step * config.batch_size / max(trainer.seconds, 1e-9)
    print(
        f"{trainer.step} steps, {trainer.seconds / 60:.1f} min of training, {rate:.0f} img/s; "
        f"checkpoint {run_dir / CHECKPOINT}"
    )
    return trainer


def init_generator(trainer: GANTrainer, version_dir: Path) -> None:
    """Start the generator and its EMA from an exported version's weights (fine-tuning)."""
    scripted = torch.jit.load(str(Path(version_dir) / "model.pt"), map_location="cpu")
    weights = {
        name.removeprefix("generator."): value
        for name, value in scripted.state_dict().items()
        if name.startswith("generator.")
    }
    trainer.generator.load_state_dict(weights)
    trainer.ema.load_state_dict(weights)


def report_progress(
    trainer: GANTrainer, options: RunOptions, grid: Path, loss_d: float, loss_g: float
) -> None:
    """One JSON line for a watching process: step, total, losses, the newest sample grid."""
    event = {"step": trainer.step, "total": options.steps, "loss_d": round(loss_d, 4),
             "loss_g": round(loss_g, 4), "sample": str(grid.resolve())}  # fmt: skip
    print(json.dumps(event), flush=True)


def restore(checkpoint: Path, cache_dir: Path = DEFAULT_CACHE) -> tuple[GANTrainer, Dataset, dict]:
    """A trainer and its data set as they were when `checkpoint` was saved."""
    state = load_checkpoint(checkpoint)
    config = config_from(state)
    data = load_dataset(config, cache_dir)
    if data.sha256 != state.get("data_sha256"):
        print(f"warning: {config.data} has changed since training (data hash differs)")
    trainer = GANTrainer(config, data.train, device())
    trainer.load_state_dict(state)
    return trainer, data, state


def report(checkpoint: Path, cache_dir: Path = DEFAULT_CACHE) -> tuple[SWD, SWD]:
    """`--eval`: SWD of the checkpoint's (EMA) generator and the real-vs-real floor."""
    trainer, data, _ = restore(checkpoint, cache_dir)
    swd, floor = evaluate(trainer, data.held_out), real_floor(data)
    print(f"step {trainer.step}, {len(data.held_out)} held-out images")
    print(f"SWD x1e3 generated vs held-out: {swd}")
    print(f"SWD x1e3 real vs real (floor):  {floor}")
    return swd, floor


def export(checkpoint: Path, version_dir: Path, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """`--export`: the sampling generator as a Triton version folder, with metadata."""
    from training.gan.export import export_generator

    trainer, data, state = restore(checkpoint, cache_dir)
    config = trainer.config
    if config.resolution != GAN_IMAGE_SIZE:
        raise ValueError(
            f"the gan contract serves {GAN_IMAGE_SIZE}px; this run is {config.resolution}px"
        )
    swd, floor = evaluate(trainer, data.held_out), real_floor(data)
    metadata = {
        "kind": "Atelier GAN generator (EMA weights)" if config.ema_decay else "GAN generator",
        "training_command": state.get("command", ""),
        "export_command": f"atelier train gan --export {checkpoint} --version-dir {version_dir}",
        "data": config.data,
        "data_sha256": data.sha256,
        "resolution": config.resolution,
        "seed": config.seed,
        "steps": trainer.step,
        "training_minutes": round(trainer.seconds / 60, 2),
        "swd_x1e3": round(swd.average, 2),
        "swd_levels_x1e3": [round(v, 2) for v in swd.levels],
        "swd_real_floor_x1e3": round(floor.average, 2),
        "swd_held_out_images": len(data.held_out),
        "config": asdict(config.generator_config()),
        "training_config": asdict(config),
    }
    return export_generator(trainer.sampler(), version_dir, metadata)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="atelier train gan", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="emoji", help='"emoji" or a folder of images')
    parser.add_argument("--resolution", type=int, default=64, choices=(64, 128))
    parser.add_argument("--minutes", type=float, default=0.0, help="wall time of this run")
    parser.add_argument("--steps", type=int, default=0, help="total steps to reach")
    parser.add_argument("--batch-size", type=int, default=ATELIER.batch_size)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/gan"), help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR/checkpoint.pt")
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=2000)
    parser.add_argument("--eval", type=Path, metavar="CHECKPOINT", help="report SWD and exit")
    parser.add_argument("--export", type=Path, metavar="CHECKPOINT", help="export and exit")
    parser.add_argument("--version-dir", type=Path, help="with --export: model_repository/gan/N")
    parser.add_argument("--samples", type=Path, help="with --export: write a grid of seeds 0..63")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument(
        "--init-from",
        type=Path,
        metavar="VERSION_DIR",
        help="fine-tune: start from an exported version's generator",
    )
    parser.add_argument(
        "--progress-json",
        action="store_true",
        help="a JSON line per sample grid on stdout instead of the progress bar",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """`atelier train gan …`."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.eval:
        report(args.eval, args.cache_dir)
        return 0
    if args.export:
        if not args.version_dir:
            raise SystemExit("--export needs --version-dir")
        path = export(args.export, args.version_dir, args.cache_dir)
        print(f"exported {path}")
        if args.samples:
            from training.gan.export import sample_sheet

            print(f"samples of seeds 0..63: {sample_sheet(path, args.samples)}")
        return 0
    if not (args.minutes or args.steps):
        raise SystemExit("give --minutes and/or --steps")
    widths = {}
    if args.init_from:  # the generator's width is the exported version's
        exported = json.loads((args.init_from / "metadata.json").read_text())["config"]
        widths = {"g_width": exported["width"], "resolution": exported["image_size"]}
    config = TrainConfig(
        **{
            **asdict(ATELIER),
            "data": args.data,
            "resolution": args.resolution,
            "batch_size": args.batch_size,
            "seed": args.seed,
            **widths,
        }
    )
    command = shlex.join(["atelier", "train", "gan", *argv])
    options = RunOptions(
        args.out,
        args.steps,
        args.minutes,
        args.sample_every,
        args.eval_every,
        resume=args.resume,
        command=command,
        progress=not args.progress_json,
        progress_json=args.progress_json,
        init_from=args.init_from,
    )
    train(config, options, args.cache_dir)
    return 0
