"""`atelier`: up, selftest, imagine, test; `train` and `deploy` are handed on lazily.

This is the one bot module allowed to reach `training/` (for `atelier train …`), and it
does so only inside that subcommand, so the bot itself never imports torch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from bot.settings import Settings

log = logging.getLogger("atelier")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `atelier` command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        if "--from-challenge" in argv:  # export the entries here: training never reads the DB
            from bot.datasets import challenge_training_argv

            argv = asyncio.run(challenge_training_argv(argv, Settings()))
        from training.cli import main as train_main

        return train_main(argv[1:])
    if argv and argv[0] == "deploy":
        from deploy.cli import main as deploy_main

        return deploy_main(argv[1:])
    if argv and argv[0] == "test":
        import pytest

        return pytest.main(argv[1:])
    args = parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return args.run(args, settings)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="atelier", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run Triton and the bot (the local stand-in if no token)")
    up.add_argument("--standin-port", type=int, default=8790)
    up.set_defaults(run=cmd_up)

    selftest = commands.add_parser("selftest", help="drive every command once; exit 0 if all ok")
    selftest.set_defaults(run=cmd_selftest)

    imagine = commands.add_parser("imagine", help="generate PNGs from seeds S, S+1, … S+N-1")
    imagine.add_argument("--seed", type=int, required=True)
    imagine.add_argument("--n", type=int, default=1)
    imagine.add_argument("--truncation", type=float, default=1.0)
    imagine.add_argument("--out", type=Path, required=True)
    imagine.set_defaults(run=cmd_imagine)

    style = commands.add_parser("style", help="restyle a picture through the same Triton path")
    style.add_argument("image", type=Path, nargs="?")
    style.add_argument("--style", help="a named style (see --list)")
    style.add_argument("--style-image", type=Path, help="or any picture as the style")
    style.add_argument("--strength", type=float, default=1.0)
    style.add_argument("--blend-with")
    style.add_argument("--blend", type=float, default=0.5)
    style.add_argument("--out", type=Path)
    style.add_argument("--list", action="store_true", help="print the style names, one per line")
    style.set_defaults(run=cmd_style)

    compose = commands.add_parser("compose", help="compose N pieces (.mid + .ogg), seeds S…S+N-1")
    compose.add_argument("--seed", type=int, required=True)
    compose.add_argument("--n", type=int, default=1)
    compose.add_argument("--bars", type=int, default=8)
    music_options(compose)
    compose.set_defaults(run=cmd_compose)

    harmonize = commands.add_parser("harmonize", help="four parts under a melody (text or .mid)")
    harmonize.add_argument("melody", help='notes like "C4 D4 E4:2 r G4/8", or a .mid file')
    harmonize.add_argument("--seed", type=int, default=0)
    music_options(harmonize, key_default=None)
    harmonize.set_defaults(run=cmd_harmonize)

    commands.add_parser("test", help="run the test suite (pytest arguments may follow)")
    commands.add_parser("train", help="training jobs: atelier train --help")
    commands.add_parser("deploy", help="serving and rollout: atelier deploy --help")
    return top


def music_options(command: argparse.ArgumentParser, key_default: str | None = "C major") -> None:
    """The options /compose and /harmonize share."""
    command.add_argument("--style", default="chorale", help="chorale or folk")
    command.add_argument("--tempo", type=int, default=None, help="quarter notes per minute")
    command.add_argument("--key", default=key_default, help='like "D minor"' + (
        "" if key_default else " (default: guessed from the melody)"))  # fmt: skip
    command.add_argument("--temperature", type=float, default=0.9)
    command.add_argument("--instrument", default="choir")
    command.add_argument("--sheet", action="store_true", help="also the piano roll and score PNGs")
    command.add_argument("--out", type=Path, required=True)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(serve_forever(settings, args.standin_port))
    return 0


async def serve_forever(settings: Settings, standin_port: int) -> None:
    """Run the stack until Ctrl-C or SIGTERM."""
    from bot.stack import running_stack

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_stack(settings, standin_port=standin_port) as stack:
        if stack.triton:
            print(f"Triton: local, gRPC {stack.triton.grpc_url}, log {stack.triton.log_path}")
        else:
            print(f"Triton: {settings.triton_url}")
        if stack.standin:
            url = stack.standin.base_url
            print(
                "No DISCORD_TOKEN set: running against the local Discord stand-in at "
                f"{url}\nPlayground (open in a browser): {stack.standin.playground_url}"
                f"\nOr script it:  curl -s -X POST {url}/_standin/invoke "
                '-d \'{"command": "imagine", "options": {"seed": 7}}\''
            )
        else:
            print(f"Connected to Discord as {stack.bot.user}")
        print("Atelier is up. Ctrl-C stops it.")
        await stop.wait()


def cmd_selftest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.selftest import run_selftest

    return 0 if asyncio.run(run_selftest(settings)) else 1


def cmd_imagine(args: argparse.Namespace, settings: Settings) -> int:
    from bot.pipelines.imagine import imagine

    async def run() -> None:
        async with triton_client(settings) as client:
            seeds = list(range(args.seed, args.seed + args.n))
            images = await imagine(client, seeds, truncation=args.truncation)
        args.out.mkdir(parents=True, exist_ok=True)
        for image in images:
            path = args.out / image.filename
            path.write_bytes(image.png())
            print(path)

    asyncio.run(run())
    return 0


def cmd_style(args: argparse.Namespace, settings: Settings) -> int:
    from bot.errors import UserFacingError
    from bot.media.images import decode_upload, encode_png
    from bot.pipelines.style import style_names, stylize, stylize_arbitrary

    if not args.list and (args.image is None or args.out is None):
        print("atelier style: give IMAGE and --out (or --list)", file=sys.stderr)
        return 2

    async def run() -> None:
        async with triton_client(settings) as client:
            if args.list:
                print("\n".join(await style_names(client)))
                return
            pixels = decode_upload(args.image.read_bytes(), max_side=settings.style_max_side)
            if args.style_image:
                style_pixels = decode_upload(args.style_image.read_bytes(), max_side=256)
                result = await stylize_arbitrary(
                    client, pixels, style_pixels, strength=args.strength
                )
            else:
                result = await stylize(
                    client, pixels, style=args.style, strength=args.strength,
                    blend_with=args.blend_with, blend=args.blend,
                )  # fmt: skip
        args.out.write_bytes(encode_png(result.pixels, result.record))
        print(args.out)

    try:
        asyncio.run(run())
    except UserFacingError as error:
        print(f"atelier style: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_compose(args: argparse.Namespace, settings: Settings) -> int:
    from bot.pipelines.compose import DEFAULT_TEMPO, MusicRequest

    requests = [
        MusicRequest(
            seed=args.seed + i,
            style=args.style,
            bars=args.bars,
            tempo=args.tempo or DEFAULT_TEMPO,
            key=args.key,
            temperature=args.temperature,
            instrument=args.instrument,
        )  # fmt: skip
        for i in range(args.n)
    ]
    return write_music(args, settings, lambda: requests)


def cmd_harmonize(args: argparse.Namespace, settings: Settings) -> int:
    from bot.media.melody import parse_midi, parse_text
    from bot.pipelines.compose import DEFAULT_TEMPO, MusicRequest

    def requests() -> list:
        path = Path(args.melody)
        is_file = path.suffix.lower() in (".mid", ".midi") and path.is_file()
        melody = parse_midi(path.read_bytes()) if is_file else parse_text(args.melody)
        tempo = args.tempo or (round(melody.tempo) if melody.tempo else DEFAULT_TEMPO)
        return [
            MusicRequest.harmonize(
                melody,
                seed=args.seed,
                key=args.key,
                style=args.style,
                tempo=tempo,
                temperature=args.temperature,
                instrument=args.instrument,
            )  # fmt: skip
        ]

    return write_music(args, settings, requests)


def write_music(args: argparse.Namespace, settings: Settings, requests) -> int:
    """Compose `requests()` through Triton and write each piece's files to --out."""
    from bot.errors import UserFacingError
    from bot.pipelines.compose import SHEET_TIMEOUT_S, cache_for, compose, render_files

    kinds = ("ogg", "mid", "roll", "score") if args.sheet else ("ogg", "mid")
    cache = cache_for(settings.state_dir)

    async def run() -> None:
        wanted = requests()
        async with triton_client(settings) as client:
            pieces = await compose(client, wanted, cache=cache)
        args.out.mkdir(parents=True, exist_ok=True)
        for piece in pieces:
            rendered = await render_files(
                piece, cache, kinds=kinds, sheet_timeout_s=SHEET_TIMEOUT_S
            )
            for kind, data in rendered.files.items():
                path = args.out / rendered.filename(kind)
                path.write_bytes(data)
                print(path)

    try:
        asyncio.run(run())
    except UserFacingError as error:
        print(f"atelier {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


@contextlib.asynccontextmanager
async def triton_client(settings: Settings):
    """An open InferenceClient: to TRITON_URL, or to a local Triton started for the call."""
    from bot.inference import InferenceClient
    from bot.stack import start_triton

    triton = None if settings.triton_url else await start_triton(settings)
    client = InferenceClient(
        settings.triton_url or triton.grpc_url, timeout_s=settings.inference_timeout_s
    )
    await client.open()
    try:
        yield client
    finally:
        await client.close()
        if triton:
            await triton.stop()


if __name__ == "__main__":
    sys.exit(main())
