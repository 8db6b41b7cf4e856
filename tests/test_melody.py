"""Parsing a user's melody for /harmonize: the text syntax and MIDI files, good and bad."""

import io

import mido
import numpy as np
import pytest

from bot.errors import UserFacingError
from bot.media.melody import (
    MAX_BARS,
    BadMelody,
    Melody,
    estimate_key,
    note_name,
    parse,
    parse_midi,
    parse_text,
)
from deploy.contracts import HOLD, REST


def notes(melody: Melody) -> list[tuple[int, int, int]]:
    return list(melody.notes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C4 D4 E4 F4 G4", [(60, 0, 4), (62, 4, 4), (64, 8, 4), (65, 12, 4), (67, 16, 4)]),
        ("c d e", [(60, 0, 4), (62, 4, 4), (64, 8, 4)]),  # octave 4, case ignored
        ("A3 B C4", [(57, 0, 4), (59, 4, 4), (60, 8, 4)]),  # B takes A3's octave
        ("F#4 Bb4 C##5 Ebb5 G♯4 A♭4", [(66, 0, 4), (70, 4, 4), (74, 8, 4), (74, 12, 4),
                                        (68, 16, 4), (68, 20, 4)]),
        ("C4:2 D4:0.5 E4:1.5 F4:0.25", [(60, 0, 8), (62, 8, 2), (64, 10, 6), (65, 16, 1)]),
        ("C4/2 D4/8 E4/4. F4/16 G4/1", [(60, 0, 8), (62, 8, 2), (64, 10, 6), (65, 16, 1),
                                        (67, 17, 16)]),
        ("C4 r D4:2 | R/8 E4/8", [(60, 0, 4), (62, 8, 8), (64, 18, 2)]),
        ("C4, D4,E4", [(60, 0, 4), (62, 4, 4), (64, 8, 4)]),
        ("C4:1/2 D4", [(60, 0, 2), (62, 2, 4)]),
    ],
)  # fmt: skip
def test_good_text(text: str, expected: list) -> None:
    assert notes(parse_text(text)) == expected


def test_column_holds_notes_and_fills_the_last_bar_with_rest() -> None:
    melody = parse_text("C4:2 r E4/8 G4:3.5")  # 8 + 4 + 2 + 14 = 28 sixteenths
    assert melody.steps == 32 and melody.bars == 2
    column = melody.column()
    expected = [60] + [HOLD] * 7 + [REST] * 4 + [64, HOLD] + [67] + [HOLD] * 13 + [REST] * 4
    assert column.tolist() == expected


def test_trailing_rests_keep_their_bars() -> None:
    melody = parse_text("C4 r:4")
    assert melody.bars == 2 and melody.column()[4:].tolist() == [REST] * 28


def test_text_round_trips() -> None:
    melody = parse_text("C4:2 r E4/8 F#4:1.5 r Bb4/16 r/16 C5:4")
    assert parse_text(melody.text()) == melody


BAD_TEXT = {
    "": "empty",
    "   ,  | ": "empty",
    "H4": "can't read `H4`",
    "C4 C4 Cx": "can't read `Cx`",
    "C4:0.3": "whole numbers of sixteenth",
    "C4:0": "whole numbers of sixteenth",
    "C4/3": "/1, /2, /4, /8 and /16",
    "C4/16.": "shorter than a sixteenth",
    "C2": "below the soprano range G3–C6; try it an octave higher",
    "C4 D7": "`D7` is above the soprano range",
    "r r:2": "no notes, only rests",
    "C4 " * (MAX_BARS * 4 + 1): f"longer than {MAX_BARS} bars",
    "C4:200": f"longer than {MAX_BARS} bars",
    "C" * 3000: "the limit is 2000",
}


@pytest.mark.parametrize("text", sorted(BAD_TEXT), ids=lambda t: repr(t[:12]))
def test_bad_text_says_why(text: str) -> None:
    with pytest.raises(BadMelody, match=BAD_TEXT[text].replace("(", r"\(")) as caught:
        parse_text(text)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, UserFacingError)


def midi_bytes(tracks: list[list[tuple[int, int, int, int]]], *, tempo: float = 100) -> bytes:
    """A type-1 file; each track a list of (channel, pitch, start, end) in sixteenths."""
    song = mido.MidiFile(type=1, ticks_per_beat=96)
    song.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo))]))
    for track in tracks:
        timed = []
        for channel, pitch, start, end in track:
            timed.append((end * 24, 0, mido.Message("note_off", channel=channel, note=pitch)))
            timed.append((start * 24, 1, mido.Message("note_on", channel=channel, note=pitch)))
        timed.sort(key=lambda t: (t[0], t[1]))
        messages, now = [], 0
        for tick, _, message in timed:
            messages.append(message.copy(time=tick - now))
            now = tick
        song.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def test_midi_takes_the_highest_melodic_track_and_its_top_notes() -> None:
    soprano = [(0, 72, 0, 4), (0, 67, 0, 4), (0, 74, 4, 8), (0, 76, 8, 16)]  # a chord, overlap
    bass = [(1, 48, 0, 16)]
    drums = [(9, 81, 0, 2), (9, 81, 2, 4)]  # higher, but drums
    melody = parse_midi(midi_bytes([bass, soprano, drums], tempo=72))
    assert notes(melody) == [(72, 0, 4), (74, 4, 4), (76, 8, 8)]
    assert melody.tempo == pytest.approx(72) and melody.steps == 16


def test_midi_drops_empty_leading_bars_and_quantises() -> None:
    line = [(0, 60, 32, 36), (0, 62, 36, 40)]
    song = mido.MidiFile(file=io.BytesIO(midi_bytes([line])))
    song.ticks_per_beat = 100  # notes now fall between sixteenths: they are rounded
    buffer = io.BytesIO()
    song.save(file=buffer)
    melody = parse_midi(buffer.getvalue())
    # Ticks 768, 864, 960 at 25 a sixteenth: 30.7, 34.6, 38.4 -> 31, 35, 38; less one bar.
    assert notes(melody) == [(60, 15, 4), (62, 19, 3)]


def test_midi_from_the_bots_own_files() -> None:
    from bot.media.audio import events_to_midi

    events = np.array([[0, 72, 0, 4], [1, 64, 0, 8], [0, 71, 4, 12], [3, 48, 0, 16]])
    assert notes(parse_midi(events_to_midi(events, tempo=60))) == [(72, 0, 4), (71, 4, 12)]


BAD_MIDI = {
    "text": (b"C4 D4 E4", "isn't a MIDI file"),
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(100), "isn't a MIDI file"),
    "truncated": (midi_bytes([[(0, 60, 0, 4)] * 3])[:30], "damaged or cut short"),
    "empty-track": (midi_bytes([[]]), "no notes"),
    "drums-only": (midi_bytes([[(9, 40, 0, 4)]]), "no notes"),
    "too-low": (midi_bytes([[(0, 36, 0, 4)]]), "below the soprano range"),
    "too-long": (midi_bytes([[(0, 60, 4 * i, 4 * i + 4) for i in range(200)]]), "bars long"),
    "huge": (b"MThd" + bytes(2 * 2**20), "the limit"),
}


@pytest.mark.parametrize("case", sorted(BAD_MIDI))
def test_bad_midi_says_why(case: str) -> None:
    data, message = BAD_MIDI[case]
    with pytest.raises(BadMelody, match=message):
        parse_midi(data)


def test_parse_needs_exactly_one_source() -> None:
    with pytest.raises(BadMelody, match="not both"):
        parse()
    with pytest.raises(BadMelody, match="not both"):
        parse("C4", midi_bytes([[(0, 60, 0, 4)]]))
    assert notes(parse("E4")) == [(64, 0, 4)]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("C4 D4 E4 F4 G4 A4 B4 C5", "C major"),
        ("A4 B4 C5 B4 A4 G#4 A4:2", "A minor"),
        ("D4 F4 A4 D5 C#5 D5:2", "D minor"),
        ("G4 G4 D5 D5 E5 E5 D5:2 C5 C5 B4 B4 A4 A4 G4:2", "G major"),
        ("Eb4 F4 G4 Ab4 Bb4 C5 D5 Eb5:2", "Eb major"),
    ],
)
def test_key_estimate(text: str, key: str) -> None:
    assert estimate_key(parse_text(text)) == key


def test_note_names() -> None:
    assert [note_name(p) for p in (60, 61, 70, 55, 84)] == ["C4", "C#4", "Bb4", "G3", "C6"]
