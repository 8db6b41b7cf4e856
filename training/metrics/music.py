"""Music statistics in the spirit of MGEval (Yang & Lerch 2018), on four-voice grids.

A piece is a grid int64 [steps, 4] on a sixteenth-note grid (voices soprano, alto, tenor,
bass; cells REST=0, HOLD=1, or a MIDI pitch where a note starts; see deploy/contracts.py)
and a key index 0..23 (tonic pitch class, +12 for minor). 4 steps are one beat.

Per piece (`piece_metrics`):
- pc_entropy: entropy in bits of the duration-weighted pitch-class histogram; a piece
  using all 12 pitch classes equally long gives log2 12 = 3.585
- in_key: fraction of the notes, weighted by duration, whose pitch class is in the key's
  scale; minor is natural + harmonic minor (8 pitch classes: the raised 7th is in)
- polyphony: mean number of distinct pitches sounding over the steps where at least one
  sounds (MGEval works on a piano roll: two voices in unison are one pitch)
- notes_per_beat: note onsets of all voices per quarter beat (of the steps where a
  voice sounds)
- pitch_range: highest minus lowest pitch, semitones
- parallel_fifths, parallel_octaves, crossings, faults: voice-leading faults per 100 beats
  (see `voice_leading`); faults is their sum

Per set (`set_metrics`): the mean and sd over its pieces of each of the above, and pc_kl:
KL(set || reference) in bits of the set's pooled duration-weighted pitch-class histogram
against a reference corpus's (by default Bach's chorales, `BACH_PC_HISTOGRAM`), every
piece transposed to the key signature of C (C major, A minor: a minor key's histogram is
rotated by the tonic of its relative major), so both modes pool onto one diatonic
collection; its sd is a bootstrap over the pieces.

These choices reproduce the published Bach figures on the 351 four-part chorales of
music21's corpus: entropy 2.95 +- 0.12, in-key 0.955 +- 0.024, polyphony 3.92, notes per
beat 4.37 +- 0.60, range 35 +- 3, and KL 0.82 for uniform random notes. Bach's own
voice-leading faults: 0.25 parallel fifths, 0.08 parallel octaves and 1.9 crossings per
100 beats (pooled over the corpus). A pooled KL shrinks as the set grows: 25 held-out
chorales against the other 288 give 0.002-0.005, a single chorale 0.14 on average, so the
published 0.038 (a set of about three chorales) depends on the set's size.

Only numpy; music21 is imported lazily by the optional `music21_key_agreement` check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from deploy.contracts import HOLD, PITCH_HIGH, PITCH_LOW, REST, grid_to_events

STEPS_PER_BEAT = 4
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural + harmonic minor
FIFTH, OCTAVE = 7, 0  # intervals mod 12

# The pooled duration-weighted pitch-class histogram of the corpus's Bach chorales (the
# 313 in 4/4 that training/data/music.py loads), each transposed to C
# (`pooled_histogram`); C, C#, ..., B. The 351 four-part chorales give the same to 0.001.
BACH_PC_HISTOGRAM = np.array(
    [0.1681, 0.0117, 0.1238, 0.0046, 0.1699, 0.0705, 0.0199, 0.1525, 0.0241, 0.1487, 0.0072, 0.0992]
)

METRICS = (
    "pc_entropy",
    "in_key",
    "polyphony",
    "notes_per_beat",
    "pitch_range",
    "parallel_fifths",
    "parallel_octaves",
    "crossings",
    "faults",
)
LABELS = {
    "pc_entropy": "pitch-class entropy (bits)",
    "in_key": "in-key ratio",
    "polyphony": "polyphony (distinct pitches)",
    "notes_per_beat": "notes per beat",
    "pitch_range": "range (semitones)",
    "pc_kl": "pitch-class KL to Bach (bits)",
    "parallel_fifths": "parallel fifths /100 beats",
    "parallel_octaves": "parallel octaves /100 beats",
    "crossings": "voice crossings /100 beats",
    "faults": "faults /100 beats (sum)",
}


def sounding(grid: np.ndarray) -> np.ndarray:
    """int64 [steps, voices]: the pitch each voice sounds at each step, 0 where it rests.

    HOLD continues the voice's note; a HOLD after a rest is a rest (as in grid_to_events).
    """
    grid = np.asarray(grid, np.int64)
    out = np.zeros_like(grid)
    for voice in range(grid.shape[1]):
        pitch = REST
        for step, cell in enumerate(grid[:, voice].tolist()):
            if cell >= PITCH_LOW:
                pitch = cell
            elif cell != HOLD:
                pitch = REST
            out[step, voice] = pitch
    return out


def onsets(grid: np.ndarray) -> np.ndarray:
    """bool [steps, voices]: where a note starts."""
    return np.asarray(grid) >= PITCH_LOW


def pitch_class_histogram(events: np.ndarray, *, weighted: bool = True) -> np.ndarray:
    """Normalised 12-bin pitch-class histogram (C first) of note events.

    Events are (voice, pitch, start, duration) rows. Each note counts its duration, or
    once when not `weighted`. An empty piece gives all zeros.
    """
    events = np.asarray(events).reshape(-1, 4)
    weights = events[:, 3] if weighted else np.ones(len(events))
    counts = np.bincount(events[:, 1] % 12, weights=weights, minlength=12).astype(float)
    total = counts.sum()
    return counts / total if total else counts


def signature_tonic(key: int) -> int:
    """The pitch class of the major tonic of a key's signature (A minor -> 0, C)."""
    return (key % 12 + (3 if key >= 12 else 0)) % 12


def transposed_histogram(events: np.ndarray, key: int, *, weighted: bool = True) -> np.ndarray:
    """The pitch-class histogram transposed to the key signature of C (C major, A minor)."""
    return np.roll(pitch_class_histogram(events, weighted=weighted), -signature_tonic(key))


def entropy_bits(histogram: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram (normalised here; zero bins are skipped)."""
    p = np.asarray(histogram, float)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


def pitch_class_entropy(events: np.ndarray, *, weighted: bool = True) -> float:
    """Entropy (bits) of the duration-weighted pitch-class histogram (or note-count)."""
    return entropy_bits(pitch_class_histogram(events, weighted=weighted))


def scale(key: int) -> tuple[int, ...]:
    """The pitch classes of a key's scale (minor: natural and harmonic minor together)."""
    tonic, minor = key % 12, key >= 12
    return tuple(sorted((tonic + step) % 12 for step in (MINOR_SCALE if minor else MAJOR_SCALE)))


def in_key_ratio(events: np.ndarray, key: int, *, weighted: bool = True) -> float:
    """Fraction of the notes, by duration (or count), whose pitch class is in the key's scale."""
    events = np.asarray(events).reshape(-1, 4)
    if not len(events):
        return 0.0
    weights = events[:, 3] if weighted else np.ones(len(events))
    return float((np.isin(events[:, 1] % 12, scale(key)) * weights).sum() / weights.sum())


def polyphony(grid: np.ndarray) -> float:
    """Mean number of distinct pitches sounding, over the steps where at least one sounds.

    Voices in unison count once, as on a piano roll (MGEval); 4 voices without rests or
    unisons give 4.0.
    """
    pitch = np.sort(sounding(grid), axis=1)
    distinct = (pitch > 0).sum(axis=1) - ((pitch[:, 1:] == pitch[:, :-1]) & (pitch[:, 1:] > 0)).sum(
        axis=1
    )
    distinct = distinct[distinct > 0]
    return float(distinct.mean()) if len(distinct) else 0.0


def notes_per_beat(grid: np.ndarray) -> float:
    """Note onsets of all voices per quarter beat, over the steps where a voice sounds.

    Silent steps (a pickup's padding, rests of all voices, the end of the last bar) don't
    count, as in `polyphony`.
    """
    grid = np.asarray(grid)
    sounding_steps = int((sounding(grid) > 0).any(axis=1).sum())
    return float(onsets(grid).sum() * STEPS_PER_BEAT / sounding_steps) if sounding_steps else 0.0


def pitch_range(events: np.ndarray) -> float:
    """Highest minus lowest pitch in semitones (0 for an empty piece)."""
    pitches = np.asarray(events).reshape(-1, 4)[:, 1]
    return float(pitches.max() - pitches.min()) if len(pitches) else 0.0


def voice_leading(grid: np.ndarray) -> dict[str, int]:
    """Counts of voice-leading faults between every two voices of a piece.

    - parallel_fifths / parallel_octaves: at a step where both voices start a new note of
      a different pitch than the one they sounded the step before, moving in the same
      direction, and the interval between them is a perfect fifth (7 mod 12), or an octave
      or unison (0 mod 12), both before and after. Both voices must sound on both steps.
    - crossings: a lower voice (later column) sounding above a higher one; counted once
      per crossing, at the step where it begins (both voices sound there and the pair
      was not crossed on the step before).
    """
    pitch = sounding(grid)
    starts = onsets(grid)
    prev, cur = pitch[:-1], pitch[1:]
    moved = starts[1:] & (prev > 0) & (cur > 0) & (cur != prev)
    direction = np.sign(cur - prev)
    counts = {"parallel_fifths": 0, "parallel_octaves": 0, "crossings": 0}
    voices = pitch.shape[1]
    for upper in range(voices):
        for lower in range(upper + 1, voices):
            parallel = moved[:, upper] & moved[:, lower]
            parallel &= direction[:, upper] == direction[:, lower]
            before = np.abs(prev[:, upper] - prev[:, lower]) % 12
            after = np.abs(cur[:, upper] - cur[:, lower]) % 12
            counts["parallel_fifths"] += int(
                (parallel & (before == FIFTH) & (after == FIFTH)).sum()
            )
            counts["parallel_octaves"] += int(
                (parallel & (before == OCTAVE) & (after == OCTAVE)).sum()
            )
            both = (pitch[:, upper] > 0) & (pitch[:, lower] > 0)
            crossed = both & (pitch[:, lower] > pitch[:, upper])
            counts["crossings"] += int(crossed[0] + (crossed[1:] & ~crossed[:-1]).sum())
    return counts


def piece_metrics(grid: np.ndarray, key: int) -> dict[str, float]:
    """Every per-piece metric (see the module docstring) of one grid [steps, 4] in `key`."""
    grid = np.asarray(grid, np.int64)
    events = grid_to_events(grid)
    beats = grid.shape[0] / STEPS_PER_BEAT
    faults = {
        name: count * 100 / beats if beats else 0.0 for name, count in voice_leading(grid).items()
    }
    return {
        "pc_entropy": pitch_class_entropy(events),
        "in_key": in_key_ratio(events, key),
        "polyphony": polyphony(grid),
        "notes_per_beat": notes_per_beat(grid),
        "pitch_range": pitch_range(events),
        **faults,
        "faults": sum(faults.values()),
    }


def kl_bits(p: np.ndarray, q: np.ndarray, eps: float = 1e-6) -> float:
    """KL(p || q) in bits of two histograms (normalised here; eps keeps empty bins finite)."""
    p = np.asarray(p, float) + eps
    q = np.asarray(q, float) + eps
    p, q = p / p.sum(), q / q.sum()
    return float((p * np.log2(p / q)).sum())


def _grid_and_key(piece: Any) -> tuple[np.ndarray, int]:
    if hasattr(piece, "grid"):
        return np.asarray(piece.grid), int(piece.key)
    grid, key = piece
    return np.asarray(grid), int(key)


def _transposed_durations(piece: Any) -> np.ndarray:
    """Unnormalised duration-weighted histogram of one piece, transposed to C."""
    grid, key = _grid_and_key(piece)
    events = grid_to_events(grid)
    counts = np.bincount(events[:, 1] % 12, weights=events[:, 3], minlength=12)
    return np.roll(counts.astype(float), -signature_tonic(key))


def pooled_histogram(pieces: Iterable[Any]) -> np.ndarray:
    """The duration-weighted pitch-class histogram of a set, transposed to C and pooled.

    Pieces are (grid, key) pairs or objects with `.grid` and `.key` (training's Piece).
    Pooled over the notes' durations: a long piece weighs more than a short one.
    """
    counts = sum((_transposed_durations(piece) for piece in pieces), np.zeros(12))
    return counts / counts.sum() if counts.sum() else counts


def set_metrics(
    pieces: Sequence[Any],
    reference: np.ndarray | None = None,
    *,
    bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """(mean, sd) over a set of pieces of every per-piece metric, plus pc_kl.

    Pieces are (grid, key) pairs or objects with `.grid` and `.key`. pc_kl is
    KL(set || reference) in bits of the pooled transposed histograms (`pooled_histogram`);
    reference defaults to BACH_PC_HISTOGRAM. Its sd is the sd of the same KL over
    `bootstrap` resamples of the pieces (seeded, so repeatable).
    """
    reference = BACH_PC_HISTOGRAM if reference is None else np.asarray(reference, float)
    if not len(pieces):
        raise ValueError("set_metrics needs at least one piece")
    rows = [piece_metrics(*_grid_and_key(piece)) for piece in pieces]
    out = {
        name: (float(np.mean([r[name] for r in rows])), float(np.std([r[name] for r in rows])))
        for name in METRICS
    }
    counts = np.array([_transposed_durations(piece) for piece in pieces])
    rng = np.random.default_rng(seed)
    resampled = [
        kl_bits(counts[rng.integers(0, len(counts), len(counts))].sum(0), reference)
        for _ in range(bootstrap)
    ]
    out["pc_kl"] = (kl_bits(counts.sum(0), reference), float(np.std(resampled)))
    return out


def random_baseline(n: int, steps: int, seed: int = 0) -> list[tuple[np.ndarray, int]]:
    """`n` pieces of uniform random notes as (grid [steps, 4], key) pairs.

    Every voice is a chain of notes without rests: pitch uniform over the contract's
    range (PITCH_LOW..PITCH_HIGH), duration uniform over 1..8 sixteenths; the key is
    uniform over the 24 keys.
    """
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(n):
        grid = np.full((steps, 4), HOLD, np.int64)
        for voice in range(4):
            step = 0
            while step < steps:
                grid[step, voice] = rng.integers(PITCH_LOW, PITCH_HIGH + 1)
                step += int(rng.integers(1, 9))
        pieces.append((grid, int(rng.integers(0, 24))))
    return pieces


def music21_key(events: np.ndarray) -> int:
    """music21's key estimate (Krumhansl-Schmuckler, duration-weighted) as a key index."""
    from music21 import note, stream

    melody = stream.Stream()
    for _, pitch, start, duration in np.asarray(events).reshape(-1, 4).tolist():
        melody.insert(start / STEPS_PER_BEAT, note.Note(pitch, quarterLength=duration / 4))
    found = melody.analyze("key")
    return found.tonic.pitchClass + (12 if found.mode == "minor" else 0)


def music21_key_agreement(events: np.ndarray, key: int) -> bool:
    """Whether music21's own key analysis of the notes finds `key` (tonic and mode)."""
    return music21_key(events) == key
