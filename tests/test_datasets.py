"""Challenge entries as training data: only active entries whose authors agreed are
exported, and `atelier train gan --from-challenge ID` trains on exactly those."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from PIL import Image

from bot.clock import ManualClock
from bot.datasets import NoTrainingData, export_challenge
from bot.media.submissions import check_image
from bot.store.challenges import ChallengeStore
from bot.store.db import Database
from tests.helpers import ROOT


def picture(colour: str, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format=kind)
    return buffer.getvalue()


async def seeded_challenge(database_file: Path) -> int:
    """A challenge with entries: two that consent (one of them a GIF), one that doesn't,
    one withdrawn after consenting."""
    database = Database(f"sqlite+aiosqlite:///{database_file}")
    await database.open()
    store, now = ChallengeStore(database), ManualClock().now()
    challenge = await store.start(
        guild_id=1, channel_id=2, theme="discs", created_by=3, max_entries=1,
        submissions_close_at=now + timedelta(hours=1), voting_close_at=now + timedelta(hours=2),
    )  # fmt: skip
    entries = [("red", "PNG", True), ("blue", "GIF", True), ("green", "PNG", False)]
    entries.append(("black", "PNG", True))
    for user, (colour, kind, consent) in enumerate(entries, start=10):
        image = check_image(picture(colour, kind), f"{colour}.{kind.lower()}", limit=2**20)
        await store.submit(challenge.id, user, image, now, training_consent=consent)
    withdrawn = (await store.entries(challenge.id, user_id=13))[0]
    await store.withdraw(withdrawn.id, 13)
    await database.close()
    return challenge.id


async def test_export_keeps_only_consenting_active_entries(tmp_path: Path) -> None:
    challenge = await seeded_challenge(tmp_path / "atelier.db")
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'atelier.db'}")
    await database.open()
    try:
        store = ChallengeStore(database)
        folder = tmp_path / "datasets" / "discs"
        assert await export_challenge(store, challenge, folder) == 2
        files = sorted(p.name for p in folder.iterdir())
        assert len(files) == 3 and "manifest.json" in files
        colours = sorted(
            Image.open(folder / name).convert("RGB").getpixel((5, 5))
            for name in files if name != "manifest.json"
        )  # fmt: skip
        assert colours == [(0, 0, 255), (255, 0, 0)]  # blue (from the GIF) and red only
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["challenge"] == challenge and len(manifest["entries"]) == 2
        with pytest.raises(NoTrainingData):
            await export_challenge(store, challenge + 1, tmp_path / "none")
    finally:
        await database.close()


async def test_train_from_challenge_cli(tmp_path: Path) -> None:
    """A two-step fine-tune of the live generator on the challenge's consenting entries."""
    challenge = await seeded_challenge(tmp_path / "atelier.db")
    environment = {**os.environ, "ATELIER_STATE_DIR": str(tmp_path)}
    environment.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "bot.cli", "train", "gan", "--from-challenge", str(challenge)]
    command += ["--steps", "2", "--sample-every", "1", "--eval-every", "0", "--progress-json"]
    command += ["--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"challenge {challenge}: 2 entries with training consent" in result.stdout
    assert "2 train + 0 held out" in result.stdout or "1 train + 1 held out" in result.stdout
    steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [event["step"] for event in steps] == [1, 2]
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    live = ROOT / "model_repository" / "gan" / max(
        (p.name for p in (ROOT / "model_repository" / "gan").iterdir() if p.name.isdigit()), key=int
    )  # fmt: skip
    assert f"--init-from {live}" in checkpoint["command"]  # fine-tuned from the live version
    assert f"--data {tmp_path / 'datasets' / f'challenge-{challenge}'}" in checkpoint["command"]
