"""Train the music model (`atelier train music`): Coconet-style masked prediction on the
Bach chorales and the Essen folk songs, then export the sampler to TorchScript.

    atelier train music --out model_repository/music/1 --minutes 25

Every report logs the held-out loss, writes piano rolls of fresh samples to
`<run-dir>/samples.png` (copied beside the exported model at the end) and compares the
samples' statistics with held-out Bach. The trained sampler is kept as
`<run-dir>/checkpoint.pt` (publish it with `atelier deploy publish music`).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from deploy.contracts import FREE, MUSIC, MUSIC_STYLES, STEPS_PER_BAR
from training.data.hashing import named_arrays_hash
from training.data.music import Piece, load_midi_folder, load_pieces, split, transpose
from training.export import CHECKPOINT_FILE, lineage, save_checkpoint
from training.music.export import export_music
from training.music.model import MASK, Composer, MusicConfig, MusicModel, to_tokens


@dataclass
class Batch:
    tokens: torch.Tensor  # [B, W, 4] model tokens, MASK where hidden
    targets: torch.Tensor  # [B, W, 4] model tokens
    hidden: torch.Tensor  # [B, W, 4] bool: cells the loss counts
    style: torch.Tensor  # [B]
    key: torch.Tensor  # [B]
    length: torch.Tensor  # [B] steps from the crop's start to the piece's end


def crop(piece: Piece, window: int, rng: random.Random) -> tuple[np.ndarray, int, int]:
    """A random window of a piece, transposed at random: (grid [window, 4], key, length)."""
    moved = transpose(piece.grid, piece.key, rng.randint(-6, 5)) or (piece.grid, piece.key)
    grid, key = moved
    beats = max(0, (len(grid) - window) // 4)
    start = 4 * rng.randint(0, beats)
    part = grid[start : start + window]
    out = np.zeros((window, 4), np.int64)  # REST padding after the end
    out[: len(part)] = part
    return out, key, len(grid) - start


def hide(grid: np.ndarray, rng: random.Random) -> np.ndarray:
    """Which cells to hide (Coconet masks, plus the tasks the bot asks for)."""
    steps, voices = grid.shape
    task = rng.random()
    if task < 0.5:  # random cells at a random rate
        return np.random.default_rng(rng.getrandbits(32)).random(grid.shape) < rng.random()
    hidden = np.zeros(grid.shape, bool)
    if task < 0.7:  # harmonise: the soprano is given
        hidden[:, 1:] = True
    elif task < 0.85:  # continue: the end is hidden
        hidden[STEPS_PER_BAR * rng.randint(1, max(1, steps // STEPS_PER_BAR - 1)) :] = True
    else:  # compose from nothing
        hidden[:] = True
    return hidden


def make_batch(pieces: list[Piece], size: int, window: int, rng: random.Random) -> Batch:
    grids, keys, lengths, hiddens, styles = [], [], [], [], []
    for piece in rng.choices(pieces, k=size):
        grid, key, length = crop(piece, window, rng)
        hidden = hide(grid, rng)
        hidden[length:] = False  # no loss on padding
        grids.append(grid)
        keys.append(key)
        lengths.append(length)
        hiddens.append(hidden)
        styles.append(piece.style)
    grid = torch.from_numpy(np.stack(grids))
    hidden = torch.from_numpy(np.stack(hiddens))
    targets = to_tokens(grid)
    return Batch(
        tokens=torch.where(hidden, torch.full_like(targets, MASK), targets),
        targets=targets,
        hidden=hidden,
        style=torch.tensor(styles),
        key=torch.tensor(keys),
        length=torch.tensor(lengths),
    )


def loss_of(model: MusicModel, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the hidden cells."""
    logits = model(batch.tokens, batch.style, batch.key, batch.length)
    return F.cross_entropy(logits[batch.hidden], batch.targets[batch.hidden])


@torch.no_grad()
def held_out_nll(model: MusicModel, pieces: list[Piece], window: int, batches: int = 8) -> dict:
    """Held-out negative log-likelihood per cell (nats), on fixed random masks and tasks."""
    model.eval()
    rng = random.Random(1234)
    losses = [loss_of(model, make_batch(pieces, 32, window, rng)).item() for _ in range(batches)]
    model.train()
    return {"nll_per_cell": float(np.mean(losses))}


def generate(
    composer: Composer, bars: int, keys: list[int], style: int, temperature: float, seed: int = 0
) -> list[np.ndarray]:
    """Grids of `bars` bars composed from nothing, one per key."""
    grids = []
    composer.eval()
    for i, key in enumerate(keys):
        given = torch.full((1, bars * STEPS_PER_BAR, 4), FREE, dtype=torch.int64)
        with torch.inference_mode():
            grid, _ = composer(
                given,
                torch.tensor([[style]]),
                torch.tensor([[key]]),
                torch.tensor([[seed + i]]),
                torch.tensor([[temperature]]),
                torch.tensor([[0]]),
            )
        grids.append(grid[0].numpy())
    return grids


def save_samples(grids: list[np.ndarray], path: Path) -> None:
    """Piano rolls of the samples, one above the other, in one PNG."""
    from PIL import Image

    from deploy.contracts import grid_to_events
    from deploy.piano_roll import piano_roll

    rolls = [piano_roll(grid_to_events(g)) for g in grids]
    width = max(r.shape[1] for r in rolls)
    sheet = np.full((sum(r.shape[0] + 8 for r in rolls), width, 3), 255, np.uint8)
    y = 0
    for roll in rolls:
        sheet[y : y + roll.shape[0], : roll.shape[1]] = roll
        y += roll.shape[0] + 8
    Image.fromarray(sheet).save(path)


def sample_metrics(grids: list[np.ndarray], keys: list[int]) -> dict:
    """The samples' statistics (training/metrics/music.py), or {} before it exists."""
    try:
        from training.metrics.music import set_metrics
    except ImportError:
        return {}
    from training.data.music import CHORALE, Piece

    pieces = [
        Piece(f"sample{i}", g, k, CHORALE) for i, (g, k) in enumerate(zip(grids, keys, strict=True))
    ]
    return {name: round(float(mean), 3) for name, (mean, _) in set_metrics(pieces).items()}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="atelier train music", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="model version folder")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    parser.add_argument("--steps", type=int, default=100_000, help="at most this many steps")
    parser.add_argument("--epoch-steps", type=int, default=400, help="steps between reports")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--window", type=int, default=128, help="training crop, in 16ths")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--folk-share", type=float, default=0.3, help="share of folk crops")
    parser.add_argument("--midi", type=Path, help="a folder of your own MIDI files to add")
    parser.add_argument("--limit", type=int, help="parse only this many corpus files (tests)")
    parser.add_argument("--folk-limit", type=int, help="parse only this many Essen .abc files")
    parser.add_argument("--iterations", type=int, default=48, help="Gibbs sampling passes")
    parser.add_argument("--temperature", type=float, default=0.9, help="for the samples")
    parser.add_argument(
        "--no-rules", action="store_true", help="sample without the voice-leading rules"
    )
    parser.add_argument(
        "--unison-penalty",
        type=float,
        default=1.4,
        help="logit taken from a new note that doubles another voice (0: none)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, help="continue from an exported model.pt")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".atelier/runs/music"),
        help="samples during training (a version folder without model.pt stops Triton)",
    )
    return parser.parse_args(argv)


def load_data(args: argparse.Namespace) -> tuple[list[Piece], list[Piece], list[Piece]]:
    """(training pieces, held-out chorales, held-out folk)."""
    chorales = load_pieces("chorale", limit=args.limit)
    folk = load_pieces("folk", limit=args.folk_limit or args.limit) if args.folk_share > 0 else []
    if args.midi:
        chorales += load_midi_folder(args.midi)
    train_c, test_c = split(chorales)
    train_f, test_f = split(folk)
    # Chorales and folk songs in the proportion asked, by repeating the smaller list.
    if train_f and args.folk_share > 0:
        want = args.folk_share / (1 - args.folk_share) * len(train_c)
        train_f = (train_f * math.ceil(want / len(train_f)))[: int(want)]
    return train_c + train_f, test_c, test_f


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    train, test_chorales, test_folk = load_data(args)
    print(
        f"training pieces {len(train)}, held out: {len(test_chorales)} chorales, "
        f"{len(test_folk)} folk"
    )
    model = initial_model(args)
    print(f"parameters {sum(p.numel() for p in model.parameters()):,}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    args.run_dir.mkdir(parents=True, exist_ok=True)  # samples while training; --out at the end
    deadline = time.monotonic() + args.minutes * 60
    history, step, started = [], 0, time.monotonic()
    bar = tqdm(total=args.steps, desc="music", unit="step")
    while step < args.steps and time.monotonic() < deadline:
        batch = make_batch(train, args.batch, args.window, rng)
        # Linear warm-up, then cosine decay over the planned time.
        progress = (time.monotonic() - started) / (deadline - started)
        lr = args.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_of(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}")
        if step % args.epoch_steps == 0:
            history.append(report(model, args, step, test_chorales, test_folk))
    bar.close()
    history.append(report(model, args, step, test_chorales, test_folk))
    composer = make_composer(model.eval(), args)
    metadata = version_metadata(composer, args, history, step, time.monotonic() - started)
    metadata["data_sha256"] = pieces_hash(train)
    # Kept before the export, so that a failed export loses nothing; `atelier deploy
    # publish music RUN_DIR/checkpoint.pt` exports it again after validation.
    checkpoint = save_checkpoint(composer, MUSIC, metadata, args.run_dir / CHECKPOINT_FILE)
    path = export_music(composer, args.out, metadata)
    shutil.copy(args.run_dir / "samples.png", args.out / "samples.png")
    print(f"exported {path}; checkpoint {checkpoint}")
    return 0


def pieces_hash(pieces: list[Piece]) -> str:
    """The training set's data hash: every piece (repeats included), key and style."""
    return named_arrays_hash(
        {f"{i:05d} {p.name} key={p.key} style={p.style}": p.grid for i, p in enumerate(pieces)}
    )


def make_composer(model: MusicModel, args: argparse.Namespace) -> Composer:
    """The sampler around `model`, with the run's sampling options."""
    return Composer(
        model,
        iterations=args.iterations,
        rules=not args.no_rules,
        unison_penalty=args.unison_penalty,
    )


def initial_model(args: argparse.Namespace) -> MusicModel:
    """A fresh model, or the network inside an exported model.pt (--init) to fine-tune."""
    if args.init is None:
        return MusicModel(
            MusicConfig(
                d_model=args.d_model, n_layer=args.layers, window=args.window, dropout=args.dropout
            )
        )
    metadata = json.loads((args.init.parent / "metadata.json").read_text())
    model = MusicModel(MusicConfig(**metadata["config"]))
    exported = torch.jit.load(str(args.init)).state_dict()
    weights = {k.removeprefix("model."): v for k, v in exported.items()}
    model.load_state_dict({k: v for k, v in weights.items() if k != "slopes"})  # not saved
    print(f"continuing from {args.init} ({metadata.get('steps', '?')} steps)")
    return model


def report(model, args, step, test_chorales, test_folk) -> dict:
    """Held-out losses, samples and their statistics; printed and returned."""
    entry = {"step": step, "chorale": held_out_nll(model, test_chorales, args.window)}
    if test_folk:
        entry["folk"] = held_out_nll(model, test_folk, args.window)
    composer = make_composer(model, args)
    keys = [p.key for p in test_chorales[:4]]
    grids = generate(composer, 8, keys, 0, args.temperature)
    save_samples(grids, args.run_dir / "samples.png")
    entry["samples"] = sample_metrics(grids, keys)
    model.train()
    tqdm.write(json.dumps(entry))
    return entry


def version_metadata(composer: Composer, args, history: list[dict], step: int, seconds: float):
    """How the version was made: configuration, steps (with --init's), history, commands."""
    model = composer.model
    earlier = json.loads((args.init.parent / "metadata.json").read_text()) if args.init else {}
    metadata = {
        "config": model.config.to_dict(),
        "styles": list(MUSIC_STYLES),
        "iterations": args.iterations,
        "steps": step,
        "seconds": round(seconds),
        "voice_leading_rules": not args.no_rules,
        "unison_penalty": args.unison_penalty,
        "batch": args.batch,
        "lr": args.lr,
        "folk_share": args.folk_share,
        "init": str(args.init) if args.init else None,
        "data": "music21 corpus: Bach chorales (4/4, four parts) and Essen folk songs (4/4, 2/4)",
        "history": earlier.get("history", []) + history,
        **lineage(earlier, "atelier train music " + " ".join(_argv_of(args)), step),
    }
    return metadata


def _argv_of(args: argparse.Namespace) -> list[str]:
    """The options as a command line again (flags only when set)."""
    options = [(f"--{k.replace('_', '-')}", v) for k, v in vars(args).items()]
    return [
        name if value is True else f"{name} {value}"
        for name, value in options
        if value is not None and value is not False
    ]
