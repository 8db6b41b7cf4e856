"""Sheet music: the LilyPond source written from note events, and the PNG LilyPond makes."""

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from bot.media import score
from bot.media.images import read_png_record

# Soprano and alto on the treble staff, tenor and bass on the bass staff, five bars.
CHORALE = np.array(
    [[v, p, s, 4] for s in range(0, 64, 4) for v, p in enumerate((72, 67, 64, 48))]
    + [[0, 74, 64, 6], [0, 73, 70, 10], [1, 65, 64, 16], [2, 62, 64, 16], [3, 50, 64, 16]],
    np.int64,
)


@pytest.mark.parametrize(
    ("key", "pitches", "names", "tonic"),
    [
        ("C major", [60, 61, 70, 48, 84], ["c'", "cis'", "ais'", "c", "c'''"], "c"),
        ("F major", [70, 61, 58], ["bes'", "des'", "bes"], "f"),
        ("D minor", [61, 70, 59], ["cis'", "bes'", "b"], "d"),  # raised 7th, 6th
        ("F# major", [65, 66, 71], ["eis'", "fis'", "b'"], "fis"),
        ("Eb major", [63, 68, 66], ["ees'", "aes'", "ges'"], "ees"),
        ("C# major", [60, 72], ["bis", "bis'"], "cis"),  # B#3 is MIDI 60
    ],
)
def test_spelling_follows_the_key(key: str, pitches: list, names: list, tonic: str) -> None:
    speller = score.Speller(key)
    assert [speller.pitch(p) for p in pitches] == names
    assert speller.tonic == tonic


def test_durations_split_at_bar_lines_and_tie() -> None:
    assert score.split_duration(0, 16) == [16]
    assert score.split_duration(12, 8) == [4, 4]  # across the bar line
    assert score.split_duration(0, 7) == [6, 1]
    assert score.split_duration(14, 20) == [2, 16, 2]
    music = score.voice_music(np.array([[0, 60, 12, 8]]), 0, 32, score.Speller("C major"))
    assert music == "r2. c'4~ c'4 r2."


def test_source_has_two_staves_four_voices_and_the_key() -> None:
    source = score.lilypond_source(CHORALE, key="D minor", tempo=84, steps=80)
    assert source.count("\\new Staff <<") == 2 and source.count("\\new Voice") == 4
    assert "\\clef treble" in source and "\\clef bass" in source
    assert source.count("\\key d \\minor \\time 4/4") == 2 and "\\tempo 4 = 84" in source
    assert "d''4. cis''2~ cis''8" in source  # soprano's last bar: spelled and tied


def test_a_melody_alone_gets_one_staff() -> None:
    source = score.lilypond_source(CHORALE[CHORALE[:, 0] == 0], key="C major", tempo=90, steps=80)
    assert source.count("\\new Staff <<") == 1 and "\\clef bass" not in source


@pytest.mark.skipif(score.lilypond_path() is None, reason="LilyPond is not installed")
def test_lilypond_renders_a_png_with_the_record() -> None:
    record = {"model": "music", "seed": 4}
    data = asyncio.run(
        score.render_score(CHORALE, key="D minor", tempo=84, steps=80, record=record)
    )
    assert data is not None and read_png_record(data) == record
    image = Image.open(io.BytesIO(data)).convert("L")
    pixels = np.asarray(image)
    assert image.width > 300 and image.height > 100
    assert (pixels < 128).mean() > 0.01  # ink on the page


def test_no_lilypond_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(score, "lilypond_path", lambda: None)
    rendered = asyncio.run(
        score.render_score(CHORALE, key="C major", tempo=90, steps=80, record={})
    )
    assert rendered is None


@pytest.mark.skipif(score.lilypond_path() is None, reason="LilyPond is not installed")
def test_timeout_is_an_error() -> None:
    with pytest.raises(score.ScoreError, match="longer than"):
        asyncio.run(
            score.render_score(
                CHORALE, key="C major", tempo=90, steps=80, record={}, timeout_s=0.01
            )
        )
