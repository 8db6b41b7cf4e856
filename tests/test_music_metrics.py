"""Music statistics: hand-made grids with known answers, and real chorales against noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploy.contracts import HOLD, PITCH_HIGH, PITCH_LOW, REST, events_to_grid, grid_to_events
from training.metrics.music import (
    BACH_PC_HISTOGRAM,
    METRICS,
    in_key_ratio,
    kl_bits,
    music21_key_agreement,
    piece_metrics,
    pitch_class_entropy,
    polyphony,
    pooled_histogram,
    random_baseline,
    scale,
    set_metrics,
    sounding,
    voice_leading,
)

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def melody(pitches: list[int], step: int = 4, voice: int = 0) -> np.ndarray:
    """A grid with one voice playing `pitches`, each `step` sixteenths long."""
    events = [(voice, p, i * step, step) for i, p in enumerate(pitches)]
    return events_to_grid(np.array(events), len(pitches) * step)


def chords(*rows: tuple[int, int, int, int], step: int = 4) -> np.ndarray:
    """A grid of block chords (soprano, alto, tenor, bass), each `step` long; 0 is a rest."""
    grid = np.full((len(rows) * step, 4), REST, np.int64)
    for i, row in enumerate(rows):
        for voice, pitch in enumerate(row):
            if pitch:
                grid[i * step, voice] = pitch
                grid[i * step + 1 : (i + 1) * step, voice] = HOLD
    return grid


def test_c_major_scale_is_all_in_c_major_and_partly_in_c_sharp_major() -> None:
    events = grid_to_events(melody(C_MAJOR_SCALE))
    assert in_key_ratio(events, 0) == 1.0
    # C# major holds C and F of the scale: C, F and the top C are in, 3 notes of 8.
    assert in_key_ratio(events, 1) == pytest.approx(3 / 8)
    # A minor is natural + harmonic minor: G (natural) and G# (harmonic) are both in.
    assert in_key_ratio(events, 21) == 1.0
    assert scale(21) == (0, 2, 4, 5, 7, 8, 9, 11)  # A B C D E F G G#


def test_in_key_ratio_weighs_notes_by_duration() -> None:
    # C for 12 steps, C# for 4: three quarters of the time in C major.
    grid = events_to_grid(np.array([(0, 60, 0, 12), (0, 61, 12, 4)]), 16)
    assert in_key_ratio(grid_to_events(grid), 0) == pytest.approx(0.75)
    assert in_key_ratio(grid_to_events(grid), 0, weighted=False) == pytest.approx(0.5)


def test_entropy_of_all_twelve_pitch_classes_is_log2_12() -> None:
    events = grid_to_events(melody(list(range(60, 72))))
    assert pitch_class_entropy(events) == pytest.approx(math.log2(12))
    assert pitch_class_entropy(grid_to_events(melody([60, 72, 48]))) == 0.0


def test_entropy_is_duration_weighted() -> None:
    grid = events_to_grid(np.array([(0, 60, 0, 12), (0, 62, 12, 4)]), 16)
    events = grid_to_events(grid)
    expected = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert pitch_class_entropy(events) == pytest.approx(expected)
    assert pitch_class_entropy(events, weighted=False) == pytest.approx(1.0)


def test_parallel_fifth_is_counted_once() -> None:
    # Soprano G4 -> A4 over bass C3 -> D3: one parallel fifth (a twelfth, mod 12 a fifth).
    grid = chords((67, 0, 0, 48), (69, 0, 0, 50))
    assert voice_leading(grid) == {"parallel_fifths": 1, "parallel_octaves": 0, "crossings": 0}
    # Held notes don't move; contrary motion into a fifth is not parallel.
    assert voice_leading(chords((67, 0, 0, 48), (67, 0, 0, 48)))["parallel_fifths"] == 0
    assert voice_leading(chords((67, 0, 0, 48), (74, 0, 0, 43)))["parallel_fifths"] == 0
    # A fifth to a sixth is not a parallel fifth.
    assert voice_leading(chords((67, 0, 0, 48), (69, 0, 0, 52)))["parallel_fifths"] == 0


def test_parallel_octaves_and_unisons() -> None:
    grid = chords((72, 60, 0, 48), (74, 62, 0, 50))
    # Soprano-alto, soprano-bass and alto-bass move in octaves: three pairs.
    assert voice_leading(grid)["parallel_octaves"] == 3
    assert voice_leading(chords((60, 60, 0, 0), (62, 62, 0, 0)))["parallel_octaves"] == 1
    # A rest between the two chords breaks the succession.
    grid = chords((72, 0, 0, 60), (0, 0, 0, 0), (74, 0, 0, 62))
    assert voice_leading(grid)["parallel_octaves"] == 0


def test_crossing_is_counted_once_per_crossing() -> None:
    # Alto above soprano for two chords (8 steps), then back, then crossed again.
    grid = chords((67, 64, 0, 0), (67, 69, 0, 0), (67, 71, 0, 0), (67, 64, 0, 0), (60, 64, 0, 0))
    assert voice_leading(grid)["crossings"] == 2
    # A bass above the tenor counts as well; a plain chord has no crossing.
    assert voice_leading(chords((72, 67, 60, 64)))["crossings"] == 1
    assert voice_leading(chords((72, 67, 64, 48)))["crossings"] == 0


def test_polyphony_counts_distinct_sounding_pitches() -> None:
    assert polyphony(chords((72, 67, 64, 48))) == 4.0
    assert polyphony(chords((72, 72, 64, 48))) == 3.0  # soprano and alto in unison
    # Two voices, then one, then silence: the silent chord is left out.
    assert polyphony(chords((72, 0, 0, 48), (72, 0, 0, 0), (0, 0, 0, 0))) == 1.5


def test_hold_after_a_rest_is_silent() -> None:
    grid = np.array([[60, REST, 0, 0], [HOLD, HOLD, 0, 0], [REST, HOLD, 0, 0]])
    assert sounding(grid)[:, :2].tolist() == [[60, 0], [60, 0], [0, 0]]


def test_piece_metrics_of_a_small_piece() -> None:
    # One bar: four quarter-note chords, all voices moving; C major.
    grid = chords((72, 67, 64, 48), (74, 67, 65, 50), (76, 67, 64, 48), (72, 64, 60, 48))
    metrics = piece_metrics(grid, 0)
    assert list(metrics) == list(METRICS)
    assert metrics["notes_per_beat"] == 4.0
    # A silent bar after it (a bar's padding) changes nothing; a sounding one halves it.
    padded = np.concatenate([grid, np.zeros((16, 4), np.int64)])
    assert piece_metrics(padded, 0)["notes_per_beat"] == 4.0
    held = padded.copy()
    held[16:, 0] = HOLD
    assert piece_metrics(held, 0)["notes_per_beat"] == 2.0
    assert metrics["pitch_range"] == 76 - 48
    assert metrics["in_key"] == 1.0
    assert metrics["polyphony"] == 4.0
    # Octaves soprano-bass 72/48 -> 74/50 and soprano-tenor 76/64 -> 72/60 (the alto's
    # repeated G and the bass's repeated C don't move): 2 in 4 beats, 50 per 100 beats.
    assert metrics["parallel_octaves"] == 50.0
    assert metrics["parallel_fifths"] == metrics["crossings"] == 0.0
    assert metrics["faults"] == 50.0
    silent = piece_metrics(np.zeros((16, 4), np.int64), 0)
    assert all(math.isfinite(v) for v in silent.values())


def test_pooled_histogram_transposes_to_the_key_signature_of_c() -> None:
    # D in D major, A in A minor and E in E minor are all bin 0 / 9 / 9 after transposing.
    d_major = (melody([62]), 2)
    a_minor = (melody([69]), 21)
    e_minor = (melody([64]), 16)
    assert pooled_histogram([d_major]).tolist() == [1.0] + [0.0] * 11
    assert np.argmax(pooled_histogram([a_minor])) == 9
    assert np.argmax(pooled_histogram([e_minor])) == 9
    assert pooled_histogram([d_major, a_minor])[[0, 9]].tolist() == [0.5, 0.5]


def test_kl_is_zero_on_itself_and_grows_with_difference() -> None:
    assert kl_bits(BACH_PC_HISTOGRAM, BACH_PC_HISTOGRAM) == pytest.approx(0.0, abs=1e-9)
    uniform = np.full(12, 1 / 12)
    assert kl_bits(uniform, BACH_PC_HISTOGRAM) > 0.5
    assert BACH_PC_HISTOGRAM.sum() == pytest.approx(1.0, abs=1e-3)


def test_random_baseline_is_seeded_and_in_range() -> None:
    first = random_baseline(3, 64, seed=5)
    again = random_baseline(3, 64, seed=5)
    other = random_baseline(3, 64, seed=6)
    assert all(
        np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, again, strict=True)
    )
    assert not np.array_equal(first[0][0], other[0][0])
    for grid, key in first:
        assert grid.shape == (64, 4) and 0 <= key < 24
        notes = grid[grid >= PITCH_LOW]
        assert notes.max() <= PITCH_HIGH
        assert set(np.unique(grid[grid < PITCH_LOW]).tolist()) <= {HOLD}
        assert (grid[0] >= PITCH_LOW).all()  # every voice starts with a note, no rests


def test_set_metrics_means_and_sds() -> None:
    a = (chords((72, 67, 64, 48)), 0)
    b = (chords((73, 67, 64, 48)), 0)
    result = set_metrics([a, b])
    assert set(result) == {*METRICS, "pc_kl"}
    assert result["in_key"] == pytest.approx((0.875, 0.125))
    assert result["pitch_range"] == pytest.approx((24.5, 0.5))
    assert result["pc_kl"] == set_metrics([a, b])["pc_kl"]  # the bootstrap is seeded
    with pytest.raises(ValueError):
        set_metrics([])


def test_music21_agrees_on_a_c_major_cadence() -> None:
    grid = chords((72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55), (72, 67, 64, 48))
    events = grid_to_events(grid)
    assert music21_key_agreement(events, 0)
    assert not music21_key_agreement(events, 6)  # F# major


@pytest.fixture(scope="module")
def chorales() -> list:
    from training.data.music import load_pieces

    pieces = load_pieces("chorale", limit=4, cache=False)  # the 4/4 ones among the first 4
    assert len(pieces) >= 2
    return pieces


def test_real_chorales_score_far_from_random_notes(chorales: list) -> None:
    bach = set_metrics(chorales)
    noise = set_metrics(random_baseline(len(chorales), 256, seed=0))
    assert 2.6 < bach["pc_entropy"][0] < 3.3 < noise["pc_entropy"][0]
    assert bach["in_key"][0] > 0.9 > 0.75 > noise["in_key"][0]
    assert 25 <= bach["pitch_range"][0] <= 45 < noise["pitch_range"][0]
    assert bach["pc_kl"][0] < 0.1 < 0.5 < noise["pc_kl"][0]
    assert bach["crossings"][0] < 10 < 100 < noise["crossings"][0]
    assert bach["faults"][0] < 0.1 * noise["faults"][0]
