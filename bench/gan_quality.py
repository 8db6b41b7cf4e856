"""GAN quality at equal wall time: Atelier's GAN against the pytorch/examples DCGAN.

Both arms train on the emoji set at 64x64 in one process, in alternating slices (15 s
each by default), and each is charged only for its own slices, so outside load on the
machine falls on both alike. Then each generator (EMA weights where the arm keeps them,
batch norm recalibrated for both) makes as many images as there are held-out emoji, and
the sliced Wasserstein distance to the held-out set is printed with the real-vs-real
floor, the images per second of each arm and the ratio SWD(atelier) / SWD(dcgan).

    .venv/bin/python -m bench.gan_quality [--minutes 8] [--arms dcgan,atelier,...]

`--arms` takes any names from VARIANTS: the experiments that chose Atelier's recipe.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import machine
from training.gan.train import (
    ATELIER,
    DCGAN_REFERENCE,
    GANTrainer,
    TrainConfig,
    device,
    evaluate,
    load_dataset,
    real_floor,
)

VARIANTS: dict[str, TrainConfig] = {
    "dcgan": DCGAN_REFERENCE,  # BCE, Adam 2e-4 (0.5, 0.999), ngf = ndf = 32, batch 64, no EMA
    "dcgan64": TrainConfig(g_width=64, d_width=64),
    "ema": TrainConfig(ema_decay=0.999),
    "ema-w16": TrainConfig(ema_decay=0.999, g_width=16, d_width=16),
    "ema-d16": TrainConfig(ema_decay=0.999, d_width=16),
    "ema-w8": TrainConfig(ema_decay=0.999, g_width=8, d_width=8),
    "ema-w16-batch32": TrainConfig(ema_decay=0.999, g_width=16, d_width=16, batch_size=32),
    "ema-w16-lr5e-4": TrainConfig(ema_decay=0.999, g_width=16, d_width=16, lr_g=5e-4, lr_d=5e-4),
    "ema-w16-hinge": TrainConfig(ema_decay=0.999, g_width=16, d_width=16, loss="hinge"),
    "ema-w16-translation": TrainConfig(
        ema_decay=0.999, g_width=16, d_width=16, augment="translation"
    ),
    "ema-hinge": TrainConfig(ema_decay=0.999, loss="hinge"),
    "ema-translation": TrainConfig(ema_decay=0.999, augment="translation"),
    "ema-lr5e-4": TrainConfig(ema_decay=0.999, lr_g=5e-4, lr_d=5e-4),
    "ema-batch32": TrainConfig(ema_decay=0.999, batch_size=32),
    "ema-sn-hinge-diffaug": TrainConfig(
        ema_decay=0.999, loss="hinge", spectral_norm=True, augment="color,translation,cutout"
    ),
    "atelier": ATELIER,
}


def interleave(trainers: dict[str, GANTrainer], seconds: float, slice_s: float) -> dict:
    """Train every arm for `seconds` of its own wall time, in alternating slices."""
    charged = dict.fromkeys(trainers, 0.0)
    while any(spent < seconds for spent in charged.values()):
        for name, trainer in trainers.items():
            budget = min(slice_s, seconds - charged[name])
            if budget <= 0:
                continue
            started = time.perf_counter()
            while time.perf_counter() - started < budget:
                trainer.train_step()
            charged[name] += time.perf_counter() - started
        print(
            "  " + "  ".join(f"{n}: {t.step} steps/{charged[n]:.0f}s" for n, t in trainers.items()),
            flush=True,
        )
    return charged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training time per arm")
    parser.add_argument("--slice", type=float, default=15.0, help="seconds per turn")
    parser.add_argument("--arms", default="dcgan,atelier", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.arms.split(",")
    data = load_dataset(TrainConfig())
    trainers = {
        name: GANTrainer(
            TrainConfig(**{**vars(VARIANTS[name]), "seed": args.seed}), data.train, device()
        )
        for name in names
    }
    print(f"machine: {machine()}; torch threads {torch.get_num_threads()}")
    print(
        f"data: emoji 64x64, {len(data.train)} train, {len(data.held_out)} held out, "
        f"sha256 {data.sha256[:12]}; {args.minutes:g} min per arm in {args.slice:g} s slices"
    )
    charged = interleave(trainers, args.minutes * 60, args.slice)
    floor = real_floor(data)
    results = {}
    for name, trainer in trainers.items():
        results[name] = evaluate(trainer, data.held_out)
        rate = trainer.step * trainer.config.batch_size / charged[name]
        print(
            f"{name:>22}: SWD x1e3 {results[name]}  {trainer.step} steps, {rate:.0f} img/s "
            f"({charged[name] / 60:.1f} min)  {trainer.config}"
        )
    print(f"{'real vs real (floor)':>22}: SWD x1e3 {floor}")
    if "dcgan" in results and "atelier" in results:
        ratio = results["atelier"].average / results["dcgan"].average
        print(f"ratio SWD(atelier) / SWD(dcgan) = {ratio:.2f} (lower is better)")


if __name__ == "__main__":
    main()
