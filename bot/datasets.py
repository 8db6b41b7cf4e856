"""Training data from the community: a challenge's entries as a folder of images.

Only active entries whose authors agreed to model training (`/challenge submit …
allow_training:True`) are written. The folder holds one file per entry, as submitted, and
`manifest.json` (challenge, entry ids, the time of export); authors' ids are not written.
`atelier train gan --from-challenge ID` and `/admin retrain challenge:ID` use it; training
then reads the folder like any other (`--data DIR`), so it never touches the database.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import shutil
from pathlib import Path

from PIL import Image

from bot.settings import Settings
from bot.store.challenges import ChallengeStore
from bot.store.db import Database
from deploy.repository import ModelRepository

MANIFEST = "manifest.json"
KEPT_AS_IS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class NoTrainingData(ValueError):
    """The challenge has no entries that may be used for training."""


def dataset_dir(state_dir: Path, challenge_id: int) -> Path:
    return state_dir / "datasets" / f"challenge-{challenge_id}"


async def export_challenge(store: ChallengeStore, challenge_id: int, folder: Path) -> int:
    """Write the challenge's consenting entries to `folder` (replacing it); the count."""
    entries = await store.training_entries(challenge_id)
    if not entries:
        raise NoTrainingData(
            f"challenge {challenge_id} has no active entries whose authors allowed training"
        )
    temporary = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    for entry in entries:
        if entry.content_type in KEPT_AS_IS:
            path = temporary / f"entry-{entry.id}{KEPT_AS_IS[entry.content_type]}"
            path.write_bytes(entry.image)
        else:  # GIF: its first frame as PNG, which the training loader reads
            Image.open(io.BytesIO(entry.image)).convert("RGB").save(
                temporary / f"entry-{entry.id}.png"
            )
    manifest = {
        "challenge": challenge_id,
        "entries": [entry.id for entry in entries],
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "consent": "training_consent",
    }
    (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    temporary.rename(folder)
    return len(entries)


async def challenge_training_argv(argv: list[str], settings: Settings) -> list[str]:
    """`train gan --from-challenge ID …` → `train gan --data <export> --init-from <live> …`.

    Exports the entries first; fine-tunes the live version unless --init-from is given."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--from-challenge", type=int, required=True)
    known, rest = parser.parse_known_args(argv)
    folder = dataset_dir(settings.state_dir, known.from_challenge)
    database = Database(settings.db_url)
    await database.open()
    try:
        count = await export_challenge(ChallengeStore(database), known.from_challenge, folder)
    finally:
        await database.close()
    print(f"challenge {known.from_challenge}: {count} entries with training consent -> {folder}")
    extra = ["--data", str(folder.resolve())]
    live = ModelRepository(settings.model_repository).live("gan")
    if "--init-from" not in rest and live is not None:
        extra += ["--init-from", str(live.path.resolve())]
    return [*rest, *extra]
