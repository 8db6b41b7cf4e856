"""The compose pipeline without Triton: given grids, records, files and the render cache.

A fake client stands in for Triton's `music` model: it fills FREE cells with a fixed
pattern, so every expected value below can be written down independently.
"""

import asyncio
import dataclasses
import io
from pathlib import Path

import mido
import numpy as np
import pytest

from bot.errors import UserFacingError
from bot.inference import InferenceError, InferenceResult
from bot.media import audio
from bot.media.images import read_png_record
from bot.media.melody import parse_text
from bot.pipelines import compose as pipeline
from bot.pipelines.compose import MusicRequest
from deploy.contracts import FREE, HOLD, MUSIC, REST, grid_to_events

BASES = (72, 65, 57, 48)  # the fake model's pitch for each voice


class FakeMusic:
    """Fills each FREE cell: a quarter note at every beat, BASES[v] + beat % 5."""

    def __init__(self, tamper: bool = False) -> None:
        self.calls: list[dict[str, np.ndarray]] = []
        self.tamper = tamper

    async def infer(self, model: str, inputs: dict, *, version: str = "") -> InferenceResult:
        assert model == "music"
        for spec in MUSIC.inputs:  # what the real client checks
            spec.check(np.ascontiguousarray(inputs[spec.name], spec.numpy_dtype))
        self.calls.append(inputs)
        grids = []
        for given in inputs["given"]:
            grid = given.copy()
            for v, base in enumerate(BASES):
                for step in np.flatnonzero(grid[:, v] == FREE):
                    grid[step, v] = base + (step // 4) % 5 if step % 4 == 0 else HOLD
            if self.tamper:
                grid[0, 0] = 70
            grids.append(grid)
        events = [grid_to_events(g) for g in grids]
        padded = np.full((len(grids), max(map(len, events)), 4), -1, np.int64)
        for i, rows in enumerate(events):
            padded[i, : len(rows)] = rows
        return InferenceResult({"grid": np.stack(grids), "events": padded}, model, "3", 0.01)


def run(coroutine):
    return asyncio.run(coroutine)


def midi_notes(data: bytes) -> list[tuple[int, int, int, int]]:
    """(voice, pitch, start, duration) from a MIDI file, by mido alone: track n is voice n-1."""
    song = mido.MidiFile(file=io.BytesIO(data))
    per_step = song.ticks_per_beat // 4
    notes = []
    for voice, track in enumerate(song.tracks[1:]):
        now, started = 0, {}
        for message in track:
            now += message.time
            if message.type == "note_on" and message.velocity > 0:
                started[message.note] = now
            elif message.type in ("note_off", "note_on"):
                start = started.pop(message.note)
                notes.append((voice, message.note, start // per_step, (now - start) // per_step))
    return sorted(notes, key=lambda n: (n[2], n[0]))


def test_given_grids() -> None:
    free = MusicRequest(seed=1, bars=4).given()
    assert free.shape == (64, 4) and (free == FREE).all()

    melody = parse_text("C4:2 D4 r:3 E4:6")  # 8 + 4 + 12 + 24 = 48 -> 3 bars
    given = MusicRequest.harmonize(melody, seed=1).given()
    assert given.shape == (48, 4) and (given[:, 1:] == FREE).all()
    soprano = [60] + [HOLD] * 7 + [62, HOLD, HOLD, HOLD] + [REST] * 12 + [64] + [HOLD] * 23
    assert given[:, 0].tolist() == soprano


def test_requests_round_trip_through_params() -> None:
    melody = parse_text("E4 D4 C4")
    request = MusicRequest.harmonize(
        melody, seed=9, style="folk", tempo=70, temperature=1.2, instrument="organ"
    )
    assert request.key == "C major" and request.bars == 1
    params = request.params()
    assert "seed" not in params and params["tempo"] == 70 and isinstance(params["melody"], str)
    assert MusicRequest.from_params(params, 9) == request
    grid = np.arange(-1, 97).repeat(4).reshape(-1, 4)
    np.testing.assert_array_equal(pipeline.decode_grid(pipeline.encode_grid(grid)), grid)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bars": 33}, "1 to 32 bars"),
        ({"tempo": 20}, "Tempo goes from 40 to 200"),
        ({"key": "H major"}, "isn't a key"),
        ({"style": "jazz"}, "styles are chorale, folk"),
        ({"instrument": "kazoo"}, "instruments are"),
        ({"temperature": 3.0}, "Temperature goes from"),
        ({"seed": -1}, "Seeds go from 0"),
    ],
)
def test_bad_options_are_refused_before_triton(change: dict, message: str) -> None:
    client = FakeMusic()
    request = dataclasses.replace(MusicRequest(seed=1), **change)
    with pytest.raises(UserFacingError, match=message):
        run(pipeline.compose(client, [request]))
    assert client.calls == []


def test_compose_sends_the_options_and_keeps_the_events() -> None:
    client = FakeMusic()
    request = MusicRequest(seed=42, style="folk", bars=4, key="D minor", temperature=0.7)
    (piece,) = run(pipeline.compose(client, [request]))
    (inputs,) = client.calls
    assert (inputs["style"].item(), inputs["key"].item(), inputs["seed"].item()) == (1, 14, 42)
    assert inputs["temperature"].item() == pytest.approx(0.7) and inputs["top_k"].item() == 0
    assert piece.model_version == "3" and piece.events.shape == (4 * 16, 4)  # 16 beats x 4
    np.testing.assert_array_equal(piece.events, grid_to_events(piece.grid))


def test_many_pieces_are_batched_by_four() -> None:
    client = FakeMusic()
    requests = [MusicRequest(seed=s, bars=4) for s in range(6)]
    pieces = run(pipeline.compose(client, requests))
    assert [len(call["seed"]) for call in client.calls] == [4, 2]
    assert [p.request.seed for p in pieces] == list(range(6))


def test_harmonisation_keeps_the_melody_and_a_model_that_changes_it_is_an_error() -> None:
    melody = parse_text("G4 A4 B4 G4 D5:4")
    (piece,) = run(pipeline.compose(FakeMusic(), [MusicRequest.harmonize(melody, seed=2)]))
    soprano = [tuple(e) for e in piece.events.tolist() if e[0] == 0]
    assert soprano == [(0, 67, 0, 4), (0, 69, 4, 4), (0, 71, 8, 4), (0, 67, 12, 4),
                       (0, 74, 16, 16)]  # fmt: skip
    with pytest.raises(InferenceError, match="changed the notes"):
        run(pipeline.compose(FakeMusic(tamper=True), [MusicRequest.harmonize(melody, seed=2)]))


def test_continuation_fixes_the_piece_and_frees_four_bars() -> None:
    (parent,) = run(pipeline.compose(FakeMusic(), [MusicRequest(seed=1, bars=4)]))
    longer = pipeline.continuation(parent, seed=7)
    assert (longer.bars, longer.seed, longer.melody) == (8, 7, None)
    given = longer.given()
    np.testing.assert_array_equal(given[:64], parent.grid)
    assert (given[64:] == FREE).all()
    with pytest.raises(UserFacingError, match="pieces end at 32"):
        pipeline.continuation(dataclasses.replace(parent, request=MusicRequest(seed=1, bars=30)), 1)


def test_files_record_the_piece_and_sound_as_long_as_its_bars(tmp_path: Path) -> None:
    request = MusicRequest(seed=5, bars=4, tempo=120, instrument="organ")
    (piece,) = run(pipeline.compose(FakeMusic(), [request]))
    rendered = run(pipeline.render_files(piece, pipeline.cache_for(tmp_path)))
    files = rendered.files
    record = {"model": "music", "model_version": "3", "seed": 5, "params": request.params()}

    # MIDI: the same notes as the events, the organ's program, the record.
    assert midi_notes(files["mid"]) == [tuple(e) for e in piece.events.tolist()]
    song = mido.MidiFile(file=io.BytesIO(files["mid"]))
    programs = {m.program for t in song.tracks for m in t if m.type == "program_change"}
    assert programs == {19}
    assert pipeline.read_midi_record(files["mid"]) == record

    # Audio: 4 bars of 16 sixteenths at 120 bpm = 8 s, plus 1 s of release; not silent.
    samples, rate = audio.decode_audio(files["ogg"])
    assert rate == 48_000 and len(samples) / rate == pytest.approx(8.0 + 1.0, abs=0.03)
    assert np.sqrt(np.mean(samples[: 8 * rate] ** 2)) > 0.01
    assert pipeline.read_opus_record(files["ogg"]) == record

    assert read_png_record(files["roll"]) == record
    if "score" in files:
        assert read_png_record(files["score"]) == record
    assert rendered.filename("ogg") == "atelier-music-v3-chorale-4bars-seed5.ogg"


def test_audio_is_padded_when_the_piece_ends_in_rests() -> None:
    events = np.array([[0, 72, 0, 4]], np.int64)  # one beat of sound in 2 bars
    piece = pipeline.Piece(MusicRequest(seed=1, bars=2, tempo=60), np.zeros((32, 4)), events, "1")
    samples = pipeline.audio_samples(piece)
    assert len(samples) == 8 * 48_000 + 48_000  # 2 bars at 60 bpm, then the release


def test_renders_are_cached_by_version_seed_and_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = pipeline.cache_for(tmp_path)
    (piece,) = run(pipeline.compose(FakeMusic(), [MusicRequest(seed=5, bars=4)], cache=cache))
    first = run(pipeline.render_files(piece, cache, kinds=("ogg", "mid", "roll")))

    def fail(piece):
        raise AssertionError("rendered again")

    monkeypatch.setattr(pipeline, "opus_file", fail)
    again = run(pipeline.render_files(piece, cache, kinds=("ogg", "mid", "roll")))
    assert again.files == first.files
    # A known version's piece comes from the cache without a model call ...
    client = FakeMusic()
    (cached,) = run(pipeline.compose(client, [piece.request], version="3", cache=cache))
    assert client.calls == [] and np.array_equal(cached.grid, piece.grid)
    np.testing.assert_array_equal(cached.events, piece.events)
    # ... and a different seed or version is a different piece.
    other = dataclasses.replace(piece, request=dataclasses.replace(piece.request, seed=6))
    assert other.key != piece.key != dataclasses.replace(piece, model_version="4").key
