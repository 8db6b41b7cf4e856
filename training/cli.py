"""`atelier train …`: the training entry points (torch is imported here, never by the bot)."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str]) -> int:
    """Parse `atelier train` arguments and run the chosen job."""
    if argv and argv[0] == "gan":  # many options of its own: the module parses them
        from training.gan.train import main as train_gan

        return train_gan(argv[1:])
    parser = argparse.ArgumentParser(prog="atelier train")
    jobs = parser.add_subparsers(dest="job", required=True)
    init = jobs.add_parser("gan-init", help="export an untrained generator (placeholder model)")
    init.add_argument("--out", type=Path, required=True, help="model version folder to write")
    init.add_argument("--seed", type=int, default=0)
    jobs.add_parser("gan", help="train the image GAN (atelier train gan --help)", add_help=False)
    args = parser.parse_args(argv)

    if args.job == "gan-init":
        from training.gan.export import export_untrained

        path = export_untrained(args.out, args.seed)
        print(f"exported {path}")
    return 0
