"""Music data: music21's Bach chorales and Essen folk songs, or a folder of MIDI files,
as 16th-note grids of four voices (the encoding of deploy/contracts.py).

Parsing is slow (music21), so each source is parsed once and cached as an .npz under
`.atelier/cache/music/`. Files that can't be parsed, or aren't in 4/4 or 2/4, are counted
and skipped. Transposition augmentation happens at training time (`transpose`).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deploy.contracts import HOLD, MUSIC_STYLES, PITCH_HIGH, PITCH_LOW, REST, STEPS_PER_BAR

CACHE_DIR = Path(".atelier/cache/music")
CACHE_VERSION = 1  # bump when the parsing below changes
MAX_STEPS = 64 * STEPS_PER_BAR  # longer pieces are cut
CHORALE, FOLK = MUSIC_STYLES.index("chorale"), MUSIC_STYLES.index("folk")


@dataclass(frozen=True)
class Piece:
    """One piece: grid [steps, 4] (soprano, alto, tenor, bass), key 0..23, style index."""

    name: str
    grid: np.ndarray
    key: int
    style: int


def load_pieces(style: str, *, limit: int | None = None, cache: bool = True) -> list[Piece]:
    """All pieces of a corpus style ("chorale" or "folk"), parsed once and cached."""
    sources = {"chorale": chorale_sources, "folk": folk_sources}[style]()[:limit]
    path = CACHE_DIR / f"{style}-{_fingerprint(sources)}.npz"
    if cache and path.exists():
        return _read_cache(path)
    pieces, skipped = [], Counter()
    for source in tqdm(sources, desc=f"parsing {style}", unit="file"):
        found, reasons = _parse_source(source, MUSIC_STYLES.index(style))
        pieces += found
        skipped.update(reasons)
    print(f"{style}: {len(pieces)} pieces, skipped {sum(skipped.values())} {dict(skipped)}")
    if cache:
        _write_cache(path, pieces)
    return pieces


def load_midi_folder(folder: Path, style: str = "chorale") -> list[Piece]:
    """A folder of the user's own MIDI files (the first four tracks with notes, by pitch)."""
    from music21 import converter

    pieces, skipped = [], Counter()
    for path in sorted(folder.rglob("*.mid*")):
        try:
            found, reasons = _score_pieces(
                converter.parse(path), path.stem, MUSIC_STYLES.index(style)
            )
        except Exception as error:  # music21 raises many kinds on bad files
            found, reasons = [], [type(error).__name__]
        pieces += found
        skipped.update(reasons)
    print(f"{folder}: {len(pieces)} pieces, skipped {sum(skipped.values())} {dict(skipped)}")
    return pieces


def split(pieces: list[Piece], held_out: float = 0.1) -> tuple[list[Piece], list[Piece]]:
    """A deterministic train / held-out split by a hash of each piece's name."""
    test = [p for p in pieces if zlib.crc32(p.name.encode()) % 1000 < held_out * 1000]
    train = [p for p in pieces if zlib.crc32(p.name.encode()) % 1000 >= held_out * 1000]
    return train, test


def transpose(grid: np.ndarray, key: int, semitones: int) -> tuple[np.ndarray, int] | None:
    """The grid and key moved by `semitones`, or None if a note leaves the model's range."""
    notes = grid >= PITCH_LOW
    if notes.any():
        low, high = grid[notes].min() + semitones, grid[notes].max() + semitones
        if low < PITCH_LOW or high > PITCH_HIGH:
            return None
    moved = np.where(notes, grid + semitones, grid)
    return moved, (key % 12 + semitones) % 12 + 12 * (key // 12)


# --- sources -------------------------------------------------------------------------------


def chorale_sources() -> list[str]:
    """The Bach chorales of music21's corpus (riemenschneider numbering order)."""
    from music21 import corpus

    return [str(p) for p in corpus.chorales.Iterator(returnType="filename")]


def folk_sources() -> list[str]:
    """The Essen folk song collection's .abc files in music21's corpus."""
    from music21 import corpus

    folder = Path(corpus.__file__).parent / "essenFolksong"
    return [str(p) for p in sorted(folder.glob("*.abc"))]


def _fingerprint(sources: list[str]) -> str:
    text = f"{CACHE_VERSION}|{PITCH_LOW}|{PITCH_HIGH}|" + "|".join(sources)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _parse_source(source: str, style: int) -> tuple[list[Piece], list[str]]:
    """Pieces of one corpus file (an .abc file holds many tunes), and skip reasons."""
    from music21 import converter, corpus, stream

    try:
        parsed = converter.parse(source) if source.endswith(".abc") else corpus.parse(source)
    except Exception as error:
        return [], [type(error).__name__]
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    pieces, reasons = [], []
    for i, score in enumerate(scores):
        name = f"{Path(source).stem}#{i}" if len(scores) > 1 else Path(source).stem
        try:
            found, why = _score_pieces(score, name, style)
        except Exception as error:
            found, why = [], [type(error).__name__]
        pieces += found
        reasons += why
    return pieces, reasons


def _score_pieces(score, name: str, style: int) -> tuple[list[Piece], list[str]]:
    """The one piece in a music21 score, or the reason it is skipped."""
    meters = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if not meters or not meters <= {"4/4", "2/4"}:
        return [], [f"meter {'+'.join(sorted(meters)) or 'none'}"]
    parts = [p for p in score.parts if p.recurse().notes]
    voices = 4 if style == CHORALE else 1
    if len(parts) < voices or (style == CHORALE and len(parts) != 4):
        return [], ["not four parts" if style == CHORALE else "no melody"]
    shift = _pickup_shift(parts[0])
    columns = [_voice_column(part, shift) for part in parts[:voices]]
    steps = min(MAX_STEPS, max(len(c) for c in columns))
    steps = -(-steps // STEPS_PER_BAR) * STEPS_PER_BAR  # whole bars
    grid = np.full((steps, 4), REST, np.int64)
    for voice, column in enumerate(columns):
        grid[: min(steps, len(column)), voice] = column[:steps]
    notes = grid[grid >= PITCH_LOW]
    if notes.size < 8:
        return [], ["too few notes"]
    return [Piece(name, trim_silent_bars(grid), _key_index(score), style)], []


def trim_silent_bars(grid: np.ndarray) -> np.ndarray:
    """The grid without whole bars of silence at its end (a final note's last step used to
    spill into one), so that pieces end on their last chord."""
    sounding = (grid != REST).any(axis=1)
    bars = -(-(int(np.flatnonzero(sounding)[-1]) + 1) // STEPS_PER_BAR) if sounding.any() else 1
    return grid[: bars * STEPS_PER_BAR]


def _pickup_shift(part) -> int:
    """Steps to add so that downbeats fall on multiples of 16 (pieces may start with a pickup)."""
    measures = part.getElementsByClass("Measure")
    if not measures:
        return 0
    first = measures[0]
    bar = first.barDuration.quarterLength
    filled = first.duration.quarterLength
    pickup = 0.0 if filled >= bar else filled
    return int(round((STEPS_PER_BAR - pickup * 4) % STEPS_PER_BAR)) if pickup else 0


def _voice_column(part, shift: int) -> np.ndarray:
    """One voice on the grid: the pitch at each onset, HOLD after it, REST between notes.

    Notes outside the model's range move by octaves into it; chords keep their top note.
    """
    flat = part.stripTies().flatten().notes
    end = max((n.offset + n.quarterLength for n in flat), default=0)
    column = np.full(shift + int(round(end * 4)) + 1, REST, np.int64)
    for note in flat:
        start = shift + int(round(note.offset * 4))
        length = max(1, int(round(note.quarterLength * 4)))
        pitch = max(p.midi for p in note.pitches)
        while pitch < PITCH_LOW:
            pitch += 12
        while pitch > PITCH_HIGH:
            pitch -= 12
        column[start] = pitch
        column[start + 1 : start + length] = HOLD
    return column


def _key_index(score) -> int:
    """The piece's key (music21's Krumhansl analysis): tonic pitch class, +12 for minor."""
    key = score.analyze("key")
    return key.tonic.pitchClass + (12 if key.mode == "minor" else 0)


def _write_cache(path: Path, pieces: list[Piece]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(p.grid) for p in pieces], np.int64)
    grids = np.concatenate([p.grid for p in pieces]) if pieces else np.zeros((0, 4), np.int64)
    np.savez_compressed(
        path,
        names=np.array([p.name for p in pieces]),
        lengths=lengths,
        grids=grids,
        keys=np.array([p.key for p in pieces], np.int64),
        styles=np.array([p.style for p in pieces], np.int64),
    )


def _read_cache(path: Path) -> list[Piece]:
    data = np.load(path)
    bounds = np.cumsum(data["lengths"])[:-1]
    grids = np.split(data["grids"], bounds) if len(data["lengths"]) else []
    return [
        Piece(str(n), trim_silent_bars(g), int(k), int(s))
        for n, g, k, s in zip(data["names"], grids, data["keys"], data["styles"], strict=True)
    ]
