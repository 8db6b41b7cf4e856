"""`/compose`, `/harmonize`, their buttons and `atelier compose|harmonize`: options -> the
`given` grid -> Triton's `music` model -> audio, MIDI, piano roll and sheet music.

A `MusicRequest` holds every option; with the seed and the model version it is the
piece's record, written into every file (MIDI text event, Opus comment, PNG text chunk).
`given` is the grid the model fills in: all FREE to compose, the soprano fixed to
harmonise, a previous piece fixed and more bars FREE to continue. Renders are cached on
disk by (model version, seed, parameters), so the same record gives the same bytes at once.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import json
import logging
import os
import secrets
import tempfile
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mido
import numpy as np

from bot.errors import UserFacingError
from bot.inference import InferenceClient, InferenceError
from bot.media import audio
from bot.media.images import record_json
from bot.media.melody import MAX_BARS, Melody, estimate_key
from bot.media.score import ScoreError, render_score
from deploy.contracts import (
    DEFAULT_TEMPERATURE,
    FREE,
    KEY_NAMES,
    MUSIC,
    MUSIC_STYLES,
    SEED_MAX,
    STEPS_PER_BAR,
    VOICES,
)

log = logging.getLogger(__name__)

MODEL = MUSIC.name
MIN_BARS = 4  # for /compose; a melody may be shorter
DEFAULT_BARS = 8
CONTINUE_BARS = 4
TEMPO_LOW, TEMPO_HIGH, DEFAULT_TEMPO = 40, 200, 90
DEFAULT_TOP_K = 0  # all tokens
INSTRUMENTS = {  # name -> General MIDI program (0-based)
    "choir": 52,
    "organ": 19,
    "piano": 0,
    "strings": 48,
    "harpsichord": 6,
    "flute": 73,
    "guitar": 24,
}
SHEET_BUDGET_S = 30.0  # LilyPond's time in a command's answer; 🎼 then gets SHEET_TIMEOUT_S
SHEET_TIMEOUT_S = 120.0
MIDI_RECORD = "atelier:"  # prefix of the MIDI text event that holds the record


def random_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def encode_grid(grid: np.ndarray) -> str:
    """A grid (cells -1..96) as short text for records: zlib-compressed int8, base64."""
    data = np.asarray(grid, np.int8).tobytes()
    return base64.b64encode(zlib.compress(data, 9)).decode()


def decode_grid(text: str, voices: int = len(VOICES)) -> np.ndarray:
    data = zlib.decompress(base64.b64decode(text))
    return np.frombuffer(data, np.int8).astype(np.int64).reshape(-1, voices)


@dataclass(frozen=True)
class MusicRequest:
    """Every option of one piece; `params()` plus the seed reproduce it."""

    seed: int
    style: str = MUSIC_STYLES[0]
    bars: int = DEFAULT_BARS
    tempo: int = DEFAULT_TEMPO
    key: str = KEY_NAMES[0]
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = DEFAULT_TOP_K
    instrument: str = "choir"
    melody: str | None = None  # a fixed soprano column (encoded), for /harmonize
    prefix: str | None = None  # a fixed opening (an encoded grid), for ➕ continue

    @classmethod
    def harmonize(cls, melody: Melody, *, seed: int, key: str | None = None, **options: Any):
        """A request that harmonises `melody` (its key estimated unless given)."""
        return cls(
            seed=seed,
            bars=melody.bars,
            key=key or estimate_key(melody),
            melody=encode_grid(melody.column()[:, None]),
            **options,
        )

    def params(self) -> dict[str, Any]:
        params = dataclasses.asdict(self)
        del params["seed"]
        return {k: v for k, v in params.items() if v is not None}

    @classmethod
    def from_params(cls, params: dict[str, Any], seed: int) -> MusicRequest:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(seed=seed, **{k: v for k, v in params.items() if k in fields})

    @property
    def steps(self) -> int:
        return self.bars * STEPS_PER_BAR

    @property
    def program(self) -> int:
        return INSTRUMENTS[self.instrument]

    def given(self) -> np.ndarray:
        """The grid for the model: FREE cells to write, the melody or opening fixed."""
        grid = np.full((self.steps, len(VOICES)), FREE, np.int64)
        if self.prefix is not None:
            prefix = decode_grid(self.prefix)
            grid[: len(prefix)] = prefix[: self.steps]
        if self.melody is not None:
            soprano = decode_grid(self.melody, 1)[:, 0]
            grid[: len(soprano), 0] = soprano[: self.steps]
        return grid

    def check(self) -> None:
        """Raise UserFacingError for options outside what the model and renderers take."""
        if self.style not in MUSIC_STYLES:
            raise UserFacingError(f"The styles are {', '.join(MUSIC_STYLES)}.")
        if not 1 <= self.bars <= MAX_BARS:
            raise UserFacingError(f"Pieces are 1 to {MAX_BARS} bars long; {self.bars} isn't.")
        if not TEMPO_LOW <= self.tempo <= TEMPO_HIGH:
            raise UserFacingError(
                f"Tempo goes from {TEMPO_LOW} to {TEMPO_HIGH}; {self.tempo} is outside."
            )
        if self.key not in KEY_NAMES:
            raise UserFacingError(f"`{self.key}` isn't a key I know (like `C major`, `A minor`).")
        if self.instrument not in INSTRUMENTS:
            raise UserFacingError(f"The instruments are {', '.join(INSTRUMENTS)}.")
        if not 0 <= self.seed <= SEED_MAX:
            raise UserFacingError(f"Seeds go from 0 to {SEED_MAX}; {self.seed} is outside.")
        spec = MUSIC.input("temperature")
        if not spec.low <= self.temperature <= spec.high:
            raise UserFacingError(
                f"Temperature goes from {spec.low:g} to {spec.high:g}; "
                f"{self.temperature:g} is outside."
            )


@dataclass(frozen=True)
class Piece:
    """A generated piece: the filled grid, its note events and the record that reproduces it."""

    request: MusicRequest
    grid: np.ndarray
    events: np.ndarray  # (voice, pitch, start, duration) rows
    model_version: str

    @property
    def record(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "model_version": self.model_version,
            "seed": self.request.seed,
            "params": self.request.params(),
        }

    @property
    def key(self) -> str:
        """The cache key: a digest of the record."""
        return hashlib.sha256(record_json(self.record).encode()).hexdigest()[:40]

    @property
    def stem(self) -> str:
        r = self.request
        kind = "harmony" if r.melody else r.style
        return f"atelier-{MODEL}-v{self.model_version}-{kind}-{r.bars}bars-seed{r.seed}"

    def describe(self) -> str:
        r = self.request
        what = "harmonisation" if r.melody else r.style
        return (
            f"{what} · {r.bars} bars · {r.key} · ♩ = {r.tempo} · {r.instrument} · "
            f"seed `{r.seed}` · temperature {r.temperature:g} · {MODEL} v{self.model_version}"
        )


class RenderCache:
    """Files by (piece key, name) under a folder; writes are atomic. None: no caching."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, key: str, name: str) -> Path | None:
        return None if self.root is None else self.root / key[:2] / key / name

    def get(self, key: str, name: str) -> bytes | None:
        path = self.path(key, name)
        return path.read_bytes() if path is not None and path.exists() else None

    def put(self, key: str, name: str, data: bytes) -> None:
        path = self.path(key, name)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)

    async def get_or_make(
        self, key: str, name: str, make: Callable[[], Awaitable[bytes | None]]
    ) -> bytes | None:
        data = await asyncio.to_thread(self.get, key, name)
        if data is None:
            data = await make()
            if data is not None:
                await asyncio.to_thread(self.put, key, name, data)
        return data


def cache_for(state_dir: Path | None) -> RenderCache:
    return RenderCache(None if state_dir is None else Path(state_dir) / "renders" / MODEL)


# --- The model ------------------------------------------------------------------------------


async def compose(
    client: InferenceClient,
    requests: Sequence[MusicRequest],
    *,
    version: str = "",
    cache: RenderCache | None = None,
) -> list[Piece]:
    """One piece per request, batched through Triton (requests of equal length together).

    With a `version` and a cache, pieces already made by that version come from the cache.
    """
    cache = cache or RenderCache(None)
    pieces: dict[int, Piece] = {}
    todo = []
    for i, request in enumerate(requests):
        request.check()
        cached = version and _cached_piece(cache, request, version)
        if cached:
            pieces[i] = cached
        else:
            todo.append(i)
    for steps in sorted({requests[i].steps for i in todo}):
        same = [i for i in todo if requests[i].steps == steps]
        for start in range(0, len(same), MUSIC.max_batch_size):
            batch = same[start : start + MUSIC.max_batch_size]
            made = await _generate(client, [requests[i] for i in batch], version)
            for i, piece in zip(batch, made, strict=True):
                pieces[i] = piece
                await asyncio.to_thread(cache.put, piece.key, "piece.json", _piece_json(piece))
    return [pieces[i] for i in range(len(requests))]


async def _generate(
    client: InferenceClient, requests: list[MusicRequest], version: str
) -> list[Piece]:
    given = np.stack([r.given() for r in requests])

    def column(values: list, dtype: type) -> np.ndarray:
        return np.array(values, dtype).reshape(-1, 1)

    inputs = {
        "given": given,
        "style": column([MUSIC_STYLES.index(r.style) for r in requests], np.int64),
        "key": column([KEY_NAMES.index(r.key) for r in requests], np.int64),
        "seed": column([r.seed for r in requests], np.int64),
        "temperature": column([r.temperature for r in requests], np.float32),
        "top_k": column([r.top_k for r in requests], np.int64),
    }
    result = await client.infer(MODEL, inputs, version=version)
    grids, events = result.outputs["grid"], result.outputs["events"]
    pieces = []
    for request, fixed, grid, rows in zip(requests, given, grids, events, strict=True):
        kept = fixed != FREE
        if grid.shape != fixed.shape or not np.array_equal(grid[kept], fixed[kept]):
            raise InferenceError(
                "The model changed the notes it was given; that's a bug on our side.",
                f"music v{result.model_version}: grid {grid.shape} does not keep `given`",
            )
        rows = rows[rows[:, 0] >= 0].astype(np.int64)
        if not len(rows):
            raise UserFacingError("The model wrote only rests this time; try another seed.")
        pieces.append(Piece(request, grid.astype(np.int64), rows, result.model_version))
    return pieces


def _piece_json(piece: Piece) -> bytes:
    return json.dumps(
        {"grid": encode_grid(piece.grid), "events": piece.events.tolist()}, separators=(",", ":")
    ).encode()


def _cached_piece(cache: RenderCache, request: MusicRequest, version: str) -> Piece | None:
    probe = Piece(request, np.zeros((0, 4), np.int64), np.zeros((0, 4), np.int64), version)
    data = cache.get(probe.key, "piece.json")
    if data is None:
        return None
    stored = json.loads(data)
    events = np.array(stored["events"], np.int64).reshape(-1, 4)
    return Piece(request, decode_grid(stored["grid"]), events, version)


def continuation(parent: Piece, seed: int, bars: int = CONTINUE_BARS) -> MusicRequest:
    """A request for `parent` followed by `bars` more bars, written with `seed`."""
    total = parent.request.bars + bars
    if total > MAX_BARS:
        raise UserFacingError(
            f"This piece has {parent.request.bars} bars; pieces end at {MAX_BARS}."
        )
    return dataclasses.replace(
        parent.request, seed=seed, bars=total, melody=None, prefix=encode_grid(parent.grid)
    )


# --- Files ------------------------------------------------------------------------------------


def midi_file(piece: Piece) -> bytes:
    """The MIDI file (a track per voice, the instrument as program) with the record."""
    data = audio.events_to_midi(
        piece.events, tempo=piece.request.tempo, program=piece.request.program
    )
    song = mido.MidiFile(file=io.BytesIO(data))
    song.tracks[0].insert(0, mido.MetaMessage("text", text=MIDI_RECORD + record_json(piece.record)))
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def read_midi_record(data: bytes) -> dict[str, Any]:
    """The record that `midi_file` wrote."""
    song = mido.MidiFile(file=io.BytesIO(data))
    for message in song.tracks[0]:
        if message.type == "text" and message.text.startswith(MIDI_RECORD):
            return json.loads(message.text[len(MIDI_RECORD) :])
    raise KeyError("no atelier record in this MIDI file")


def audio_samples(piece: Piece) -> np.ndarray:
    """Stereo samples: exactly the piece's bars at its tempo, then one second of release."""
    r = piece.request
    samples = audio.render(piece.events, tempo=r.tempo, program=r.program)
    length = round(r.steps * audio.seconds_per_step(r.tempo) * audio.SAMPLE_RATE)
    length += audio.SAMPLE_RATE
    if len(samples) < length:
        samples = np.concatenate([samples, np.zeros((length - len(samples), 2), samples.dtype)])
    return samples[:length]


def opus_file(piece: Piece) -> bytes:
    """OGG Opus (plays inside Discord) with the record as its comment."""
    return audio.encode_opus(audio_samples(piece), comment=record_json(piece.record))


def read_opus_record(data: bytes) -> dict[str, Any]:
    import soundfile

    with soundfile.SoundFile(io.BytesIO(data)) as handle:
        return json.loads(handle.comment)


def piano_roll(piece: Piece) -> bytes:
    """The piano roll PNG with the record in its text chunk."""
    from PIL import Image

    from bot.media.images import encode_png

    with Image.open(io.BytesIO(audio.piano_roll_png(piece.events))) as image:
        pixels = np.asarray(image.convert("RGB"))
    return encode_png(pixels, piece.record)


@dataclass(frozen=True)
class Rendered:
    """A piece's files by kind (`ogg`, `mid`, `roll`, `score`); `score` may be missing."""

    piece: Piece
    files: dict[str, bytes]

    FILENAMES = {"ogg": ".ogg", "mid": ".mid", "roll": "-roll.png", "score": "-score.png"}

    def filename(self, kind: str) -> str:
        return self.piece.stem + self.FILENAMES[kind]


async def render_files(
    piece: Piece,
    cache: RenderCache | None = None,
    *,
    kinds: Sequence[str] = ("ogg", "mid", "roll", "score"),
    sheet_timeout_s: float | None = None,
) -> Rendered:
    """The piece's files, from the cache or made now (in threads; LilyPond as a process).

    The score is left out when LilyPond is missing, fails or takes over `sheet_timeout_s`
    (SHEET_BUDGET_S by default).
    """
    cache = cache or RenderCache(None)
    sheet_timeout_s = SHEET_BUDGET_S if sheet_timeout_s is None else sheet_timeout_s

    def threaded(make: Callable[[Piece], bytes]) -> Callable[[], Awaitable[bytes]]:
        return lambda: asyncio.to_thread(make, piece)

    makers: dict[str, Callable[[], Awaitable[bytes | None]]] = {
        "ogg": threaded(opus_file),
        "mid": threaded(midi_file),
        "roll": threaded(piano_roll),
        "score": lambda: sheet_music(piece, sheet_timeout_s),
    }
    names = {"ogg": "piece.ogg", "mid": "piece.mid", "roll": "roll.png", "score": "score.png"}
    made = await asyncio.gather(
        *(cache.get_or_make(piece.key, names[kind], makers[kind]) for kind in kinds)
    )
    return Rendered(piece, {k: v for k, v in zip(kinds, made, strict=True) if v is not None})


async def sheet_music(piece: Piece, timeout_s: float = SHEET_TIMEOUT_S) -> bytes | None:
    """The score PNG, or None (logged) when LilyPond is missing, fails or is too slow."""
    r = piece.request
    try:
        data = await render_score(
            piece.events, key=r.key, tempo=r.tempo, steps=r.steps, record=piece.record,
            timeout_s=timeout_s,
        )  # fmt: skip
    except ScoreError as error:
        log.warning("sheet music for %s not rendered: %s", piece.stem, error)
        return None
    if data is None:
        log.info("LilyPond is not installed: no sheet music")
    return data
