"""`atelier train …`: the training entry points (torch is imported here, never by the bot)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

# Jobs with many options of their own: their modules parse the rest of the command line.
DELEGATED = {
    "gan": ("training.gan.train", "train the image GAN; --eval or --export a checkpoint"),
    "style": ("training.style.train", "train or fine-tune the named-style network"),
    "style-arbitrary": ("training.style.arbitrary", "distil the arbitrary-style model"),
    "music": ("training.music.train", "train the four-voice music model and export it"),
}


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (the bot's /admin cancel, a container stop) raise
    KeyboardInterrupt, so that a run saves its checkpoint and exits. SIGINT is restored even
    where it was ignored at start (a background job of a shell without job control)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def main(argv: list[str]) -> int:
    """Parse `atelier train` arguments and run the chosen job."""
    stop_on_signals()
    if argv and argv[0] in DELEGATED:
        import importlib

        return importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="atelier train")
    jobs = parser.add_subparsers(dest="job", required=True)
    init = jobs.add_parser("gan-init", help="export an untrained generator (placeholder model)")
    init.add_argument("--out", type=Path, required=True, help="model version folder to write")
    init.add_argument("--seed", type=int, default=0)
    for name, (_, help_text) in DELEGATED.items():
        jobs.add_parser(name, help=f"{help_text} (atelier train {name} --help)", add_help=False)
    args = parser.parse_args(argv)

    if args.job == "gan-init":
        from training.gan.export import export_untrained

        path = export_untrained(args.out, args.seed)
        print(f"exported {path}")
    return 0
