"""The music model: corpus parsing and augmentation, the TorchScript sampler (determinism,
fixed cells kept, events equal to the grid), training lowering the loss, and Triton
serving exactly what the file computes locally."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.inference import InferenceClient
from deploy.contracts import (
    FREE,
    HOLD,
    MUSIC,
    PITCH_HIGH,
    PITCH_LOW,
    REST,
    events_to_grid,
    grid_to_events,
)
from deploy.triton import LocalTriton
from deploy.validation import profile_for
from tests.helpers import latest_version
from training.data.music import CHORALE, Piece, load_pieces, split, transpose
from training.export import run_module
from training.music.export import music_inputs
from training.music.model import Composer, MusicConfig, MusicModel, clean, events
from training.music.train import loss_of, make_batch

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def chorales() -> list[Piece]:
    return load_pieces("chorale", limit=4, cache=False)


@pytest.fixture(scope="module")
def served() -> torch.jit.ScriptModule:
    return torch.jit.load(str(latest_version("music") / "model.pt")).eval()


def test_chorales_parse_to_four_voice_grids(chorales: list[Piece]) -> None:
    assert len(chorales) == 3  # of the first four, bwv 26.6 is in 3/4 and is skipped
    for piece in chorales:
        assert piece.grid.shape[1] == 4 and len(piece.grid) % 16 == 0
        notes = piece.grid[piece.grid >= PITCH_LOW]
        assert notes.size > 50 and notes.max() <= PITCH_HIGH
        soprano, bass = grid_to_events(piece.grid[:, :1]), grid_to_events(piece.grid[:, 3:])
        assert np.median(soprano[:, 1]) > np.median(bass[:, 1]) + 12  # voices in order
        assert 0 <= piece.key < 24
    # bwv347 starts with a one-beat pickup: its first note lands on beat 4 of bar 0.
    assert chorales[0].name == "bwv347" and chorales[0].grid[12, 0] >= PITCH_LOW
    assert (chorales[0].grid[:12] == REST).all()


def test_transposition_moves_notes_and_key_and_refuses_to_leave_the_range(
    chorales: list[Piece],
) -> None:
    piece = chorales[0]
    moved, key = transpose(piece.grid, piece.key, 3)
    notes = piece.grid >= PITCH_LOW
    assert (moved[notes] == piece.grid[notes] + 3).all()
    assert (moved[~notes] == piece.grid[~notes]).all()  # rests and holds stay
    assert key % 12 == (piece.key + 3) % 12 and key // 12 == piece.key // 12
    assert transpose(piece.grid, piece.key, PITCH_HIGH) is None


def test_split_is_deterministic_and_disjoint() -> None:
    pieces = [Piece(f"p{i}", np.zeros((16, 4), np.int64), 0, CHORALE) for i in range(200)]
    train, test = split(pieces)
    assert split(pieces) == (train, test)
    assert 5 < len(test) < 40 and not {p.name for p in train} & {p.name for p in test}


def test_grid_and_events_round_trip(chorales: list[Piece]) -> None:
    grid = chorales[1].grid
    events_ = grid_to_events(grid)
    assert np.array_equal(events_to_grid(events_, len(grid)), grid)
    torch_events = events(torch.from_numpy(grid[None]))[0].numpy()
    assert np.array_equal(torch_events, events_)


def test_clean_turns_orphan_holds_into_rests() -> None:
    grid = torch.tensor([[[HOLD], [60], [HOLD], [REST], [HOLD], [62]]])
    assert clean(grid)[0, :, 0].tolist() == [REST, 60, HOLD, REST, REST, 62]


def test_sampler_is_deterministic_and_keeps_given_cells(served: torch.jit.ScriptModule) -> None:
    inputs = music_inputs(bars=2)
    first = run_module(served, MUSIC, inputs)
    again = run_module(served, MUSIC, inputs)
    assert np.array_equal(first["grid"], again["grid"])
    assert np.array_equal(first["events"], again["events"])
    given = inputs["given"][1]
    fixed = given != FREE
    assert np.array_equal(first["grid"][1][fixed], given[fixed])  # the melody is kept
    for item in range(2):
        rows = first["events"][item]
        assert np.array_equal(rows[rows[:, 0] >= 0], grid_to_events(first["grid"][item]))
    other = dict(inputs, seed=inputs["seed"] + 100)
    assert not np.array_equal(run_module(served, MUSIC, other)["grid"], first["grid"])


def test_a_request_alone_equals_the_same_request_in_a_batch(
    served: torch.jit.ScriptModule,
) -> None:
    inputs = music_inputs(bars=2)
    batch = run_module(served, MUSIC, inputs)
    alone = run_module(served, MUSIC, {k: v[1:] for k, v in inputs.items()})
    assert np.array_equal(alone["grid"][0], batch["grid"][1])


def test_training_steps_lower_the_loss(chorales: list[Piece]) -> None:
    torch.manual_seed(0)
    model = MusicModel(MusicConfig(d_model=32, n_layer=1, n_head=2, window=64, dropout=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    fixed = make_batch(chorales, 8, 64, random.Random(0))
    before = loss_of(model, fixed).item()
    rng = random.Random(1)
    for _ in range(40):
        loss = loss_of(model, make_batch(chorales, 8, 64, rng))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss_of(model, fixed).item() < before - 0.5


async def test_triton_serves_what_the_file_computes(
    triton: LocalTriton, served: torch.jit.ScriptModule
) -> None:
    inputs = music_inputs(bars=2)
    local = run_module(served, MUSIC, inputs)
    client = InferenceClient(triton.grpc_url, timeout_s=60)
    await client.open()
    try:
        result = await client.infer("music", inputs)
    finally:
        await client.close()
    assert np.array_equal(result.outputs["grid"], local["grid"])
    assert np.array_equal(result.outputs["events"], local["events"])
    assert result.model_version == latest_version("music").name


def test_composer_matches_its_scripted_self() -> None:
    torch.manual_seed(3)
    model = MusicModel(MusicConfig(d_model=32, n_layer=1, n_head=2))
    composer = Composer(model, iterations=4, unison_penalty=1.4)
    composer.eval()
    scripted = torch.jit.script(composer)
    inputs = music_inputs(bars=1)
    assert np.array_equal(
        run_module(composer, MUSIC, inputs)["grid"], run_module(scripted, MUSIC, inputs)["grid"]
    )


def test_voice_leading_rules_forbid_parallels_crossings_and_orphan_holds() -> None:
    from training.music.model import MASK, PITCH_TOKEN, voice_leading_rules

    def tok(pitch: int) -> int:
        return pitch + PITCH_TOKEN

    # C5/G4/E4/C4, then the bass moves up to D4 and the soprano is to be written.
    tokens = torch.tensor([[[tok(72), tok(67), tok(64), tok(60)], [MASK, HOLD, HOLD, tok(62)]]])
    forbidden = voice_leading_rules(tokens)[0, 1, 0]
    assert forbidden[tok(74)]  # D5: parallel octaves with the bass
    assert not forbidden[tok(76)] and not forbidden[tok(71)]  # E5 or B4 are fine
    assert forbidden[tok(65)]  # F4 would cross below the alto's G4
    assert not forbidden[REST] and not forbidden[HOLD]  # holding C5 is fine
    rests = torch.tensor([[[REST] * 4, [MASK] * 4]])
    assert voice_leading_rules(rests)[0, 1, :, HOLD].all()  # nothing to hold after a rest


def test_a_training_run_keeps_a_checkpoint_that_publish_exports(tmp_path: Path) -> None:
    """Two steps of `atelier train music`: `deploy publish` stages the run's checkpoint.pt
    (export again, eager parity) into the same sampler as the run's own export."""
    from training.music.train import main

    run, out, staging = tmp_path / "run", tmp_path / "1", tmp_path / "staging"
    argv = ["--out", str(out), "--run-dir", str(run), "--steps", "2", "--limit", "8"]
    argv += ["--folk-share", "0", "--iterations", "2", "--threads", str(torch.get_num_threads())]
    assert main(argv) == 0
    staging.mkdir()
    profile_for("music").stage(run / "checkpoint.pt", staging)
    staged, exported = (json.loads((d / "metadata.json").read_text()) for d in (staging, out))
    assert len(staged["data_sha256"]) == 64 and staged["data_sha256"] == exported["data_sha256"]
    assert "--folk-share 0.0" in staged["training_commands"][-1]
    inputs = music_inputs()
    got = run_module(torch.jit.load(str(staging / "model.pt")), MUSIC, inputs)
    expected = run_module(torch.jit.load(str(out / "model.pt")), MUSIC, inputs)
    np.testing.assert_array_equal(got["grid"], expected["grid"])


def test_unisons_mark_the_pitches_other_voices_sound() -> None:
    from training.music.model import MASK, PITCH_TOKEN, unisons

    tokens = torch.tensor([[[72 + PITCH_TOKEN, 67 + PITCH_TOKEN, MASK, 60 + PITCH_TOKEN]]])
    doubled = unisons(tokens)[0, 0]
    assert doubled[2, 67 + PITCH_TOKEN] and doubled[2, 60 + PITCH_TOKEN]
    assert not doubled[2, 64 + PITCH_TOKEN] and not doubled[2, HOLD] and not doubled[2, REST]
    assert doubled[0, 67 + PITCH_TOKEN] and not doubled[0, 72 + PITCH_TOKEN]  # not itself


def test_pieces_end_on_their_last_chord() -> None:
    from training.data.music import trim_silent_bars

    grid = np.full((48, 4), REST, np.int64)
    grid[0:17, 0] = 60  # the last note's final step spills one step into bar 2
    assert trim_silent_bars(grid).shape == (32, 4)
    assert trim_silent_bars(grid[:16]).shape == (16, 4)
