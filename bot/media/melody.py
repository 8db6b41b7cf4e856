"""A user's melody for `/harmonize`: note text or a MIDI file -> a soprano line on the grid.

Text syntax (case does not matter; notes are separated by spaces, commas or `|`):

- a note is a letter, accidentals and an octave: `C4` (middle C, MIDI 60), `F#4`, `Bb3`,
  `C##5`, `Ebb4` (`♯`/`♭` work too). Without an octave a note takes the previous note's
  octave (4 at the start): `C D E F G` is `C4 D4 E4 F4 G4`;
- `r` is a rest;
- a note lasts a quarter note unless a duration follows: `:BEATS` in quarter notes
  (`C4:2` a half note, `C4:0.5` an eighth, `C4:1.5` a dotted quarter) or `/VALUE`
  (`C4/2` a half note, `C4/8` an eighth, `C4/16` a sixteenth, `C4/4.` a dotted quarter);
- `|` bar lines may be written for readability; they are not checked.

Every duration must be a whole number of sixteenth notes. The melody is laid out from the
first beat; its last bar is filled up with a rest. A MIDI file gives its highest-sounding
melodic track (never the drums), made monophonic by keeping the top note of each onset.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from fractions import Fraction

import mido
import numpy as np

from bot.errors import UserFacingError
from deploy.contracts import HOLD, KEY_NAMES, PITCH_HIGH, PITCH_LOW, REST, STEPS_PER_BAR

MAX_BARS = 32
MAX_STEPS = MAX_BARS * STEPS_PER_BAR
MAX_MIDI_BYTES = 1 * 2**20
MAX_TEXT = 2000
# A sensible soprano range (G3..C6), well inside the model's PITCH_LOW..PITCH_HIGH.
SOPRANO_LOW, SOPRANO_HIGH = max(55, PITCH_LOW), min(84, PITCH_HIGH)
assert PITCH_LOW <= SOPRANO_LOW < SOPRANO_HIGH <= PITCH_HIGH

LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
TOKEN = re.compile(
    r"""^(?:
        (?P<rest>r)
        | (?P<letter>[a-g])(?P<accidentals>\#{1,2}|b{1,2}|♯{1,2}|♭{1,2})?(?P<octave>-?\d)?
    )
    (?: :(?P<beats>\d+(?:\.\d+)?|\d+/\d+) | /(?P<value>\d+)(?P<dots>\.{0,2}) )?$""",
    re.VERBOSE | re.IGNORECASE,
)
NOTE_VALUES = {1: 16, 2: 8, 4: 4, 8: 2, 16: 1}  # /VALUE -> sixteenths


class BadMelody(UserFacingError, ValueError):
    """A melody that can't be harmonised; the message tells the user why."""


@dataclass(frozen=True)
class Melody:
    """A monophonic line: notes as (pitch or None for a rest, start, duration) in sixteenths."""

    notes: tuple[tuple[int, int, int], ...]  # (pitch, start, duration), rests left out
    length: int  # in sixteenths, trailing rests included
    tempo: float | None = None  # from a MIDI file's first tempo, when it has one

    @property
    def steps(self) -> int:
        """The length in sixteenths, rounded up to whole bars."""
        return -(-self.length // STEPS_PER_BAR) * STEPS_PER_BAR

    @property
    def bars(self) -> int:
        return self.steps // STEPS_PER_BAR

    def column(self) -> np.ndarray:
        """The soprano column of the grid: the pitch at each onset, HOLD after, REST elsewhere."""
        column = np.full(self.steps, REST, np.int64)
        for pitch, start, duration in self.notes:
            column[start] = pitch
            column[start + 1 : start + duration] = HOLD
        return column

    def text(self) -> str:
        """The melody in the text syntax (parses back to the same melody, rests included)."""
        words, now = [], 0
        for pitch, start, duration in self.notes:
            if start > now:
                words.append(f"r{_duration_text(start - now)}")
            words.append(f"{note_name(pitch)}{_duration_text(duration)}")
            now = start + duration
        if self.length > now:
            words.append(f"r{_duration_text(self.length - now)}")
        return " ".join(words)


def note_name(pitch: int) -> str:
    """Scientific pitch notation with sharps or flats as in NAMES: 60 -> C4, 70 -> Bb4."""
    return f"{NAMES[pitch % 12]}{pitch // 12 - 1}"


def _duration_text(sixteenths: int) -> str:
    return "" if sixteenths == 4 else f":{sixteenths / 4:g}"


def _beats_to_steps(text: str, token: str) -> int:
    beats = Fraction(text)
    steps = beats * 4
    if steps.denominator != 1 or steps <= 0:
        raise BadMelody(
            f"`{token}`: durations are whole numbers of sixteenth notes "
            "(quarter-note beats in steps of 0.25)."
        )
    return int(steps)


def _value_to_steps(value: int, dots: str, token: str) -> int:
    if value not in NOTE_VALUES:
        raise BadMelody(f"`{token}`: the note values are /1, /2, /4, /8 and /16.")
    steps, extra = NOTE_VALUES[value], NOTE_VALUES[value]
    for _ in dots:
        extra /= 2
        steps += extra
    if steps != int(steps):
        raise BadMelody(f"`{token}`: that dotted value is shorter than a sixteenth note.")
    return int(steps)


def check_pitch(pitch: int, what: str) -> None:
    if not SOPRANO_LOW <= pitch <= SOPRANO_HIGH:
        where = "below" if pitch < SOPRANO_LOW else "above"
        hint = "higher" if pitch < SOPRANO_LOW else "lower"
        raise BadMelody(
            f"{what} is {where} the soprano range {note_name(SOPRANO_LOW)}–"
            f"{note_name(SOPRANO_HIGH)}; try it an octave {hint}."
        )


def parse_text(text: str) -> Melody:
    """Parse the text syntax (see the module's docstring) into a Melody."""
    if len(text) > MAX_TEXT:
        raise BadMelody(f"That melody is {len(text)} characters long; the limit is {MAX_TEXT}.")
    tokens = [t for t in re.split(r"[\s,|]+", text.strip()) if t]
    if not tokens:
        raise BadMelody("The melody is empty. Write notes like `C4 D4 E4 F4 G4`.")
    notes, now, octave = [], 0, 4
    for token in tokens:
        match = TOKEN.match(token)
        if match is None:
            raise BadMelody(
                f"I can't read `{token[:20]}` as a note. Write notes like `C4`, `F#4:2`, "
                "`Bb3/8` or `r` for a rest."
            )
        if match["beats"]:
            duration = _beats_to_steps(match["beats"], token)
        elif match["value"]:
            duration = _value_to_steps(int(match["value"]), match["dots"], token)
        else:
            duration = 4
        if match["rest"]:
            pitch = None
        else:
            accidentals = match["accidentals"] or ""
            shift = sum(1 if a in "#♯" else -1 for a in accidentals)
            octave = int(match["octave"]) if match["octave"] is not None else octave
            pitch = 12 * (octave + 1) + LETTERS[match["letter"].lower()] + shift
            check_pitch(pitch, f"`{token}`")
        notes.append((pitch, now, duration))
        now += duration
        if now > MAX_STEPS:
            raise BadMelody(f"That melody is longer than {MAX_BARS} bars of 4/4, the limit.")
    return finish(notes)


def finish(notes: list[tuple[int | None, int, int]], tempo: float | None = None) -> Melody:
    """Drop rests (gaps imply them) and check that there is something to harmonise."""
    sounding = tuple((p, s, d) for p, s, d in notes if p is not None)
    if not sounding:
        raise BadMelody("The melody has no notes, only rests.")
    end = max(start + duration for _, start, duration in notes)
    if end > MAX_STEPS:
        raise BadMelody(
            f"That melody is {-(-end // STEPS_PER_BAR)} bars long; the limit is {MAX_BARS}."
        )
    return Melody(sounding, end, tempo)


def parse_midi(data: bytes) -> Melody:
    """The highest-sounding melodic track of a MIDI file, quantised to sixteenth notes."""
    if len(data) > MAX_MIDI_BYTES:
        raise BadMelody(f"That MIDI file is over {MAX_MIDI_BYTES // 2**20} MiB; the limit.")
    if not data.startswith(b"MThd"):
        raise BadMelody("That file isn't a MIDI file (.mid). Attach a Standard MIDI File.")
    try:
        song = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as error:  # mido raises OSError, EOFError, ValueError, KeyError, …
        raise BadMelody("That MIDI file is damaged or cut short; I can't read it.") from error
    if song.type == 2:
        raise BadMelody("That MIDI file is of type 2 (separate songs); use type 0 or 1.")
    lines, tempo = _midi_lines(song)
    if not lines:
        raise BadMelody("That MIDI file has no notes.")
    # The melody: the line with the highest average pitch (the soprano of most files).
    line = max(lines.values(), key=lambda notes: (np.mean([p for p, _, _ in notes]), -len(notes)))
    step = song.ticks_per_beat / 4
    onsets: dict[int, tuple[int, int]] = {}  # quantised start -> (pitch, end), top note kept
    for pitch, start, end in line:
        begin, stop = round(start / step), round(end / step)
        stop = max(stop, begin + 1)
        if begin not in onsets or pitch > onsets[begin][0]:
            onsets[begin] = (pitch, stop)
    starts = sorted(onsets)
    shift = starts[0] // STEPS_PER_BAR * STEPS_PER_BAR  # drop empty bars before the first note
    notes = []
    for i, begin in enumerate(starts):
        pitch, stop = onsets[begin]
        if i + 1 < len(starts):
            stop = min(stop, starts[i + 1])  # monophonic: a note ends where the next begins
        check_pitch(pitch, f"The MIDI note {note_name(pitch)} (at beat {begin / 4 + 1:g})")
        notes.append((pitch, begin - shift, stop - begin))
        if begin - shift >= MAX_STEPS:
            break
    return finish(notes, tempo)


def _midi_lines(song: mido.MidiFile) -> tuple[dict[tuple[int, int], list], float | None]:
    """Notes (pitch, start tick, end tick) per (track, channel), drums left out; first tempo."""
    lines: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    tempo = None
    for index, track in enumerate(song.tracks):
        now, sounding = 0, {}
        for message in track:
            now += message.time
            if message.type == "set_tempo" and tempo is None:
                tempo = round(mido.tempo2bpm(message.tempo), 2)
            if message.type not in ("note_on", "note_off") or message.channel == 9:
                continue
            key = (message.channel, message.note)
            if message.type == "note_on" and message.velocity > 0:
                sounding.setdefault(key, now)
            elif key in sounding:
                start = sounding.pop(key)
                lines.setdefault((index, message.channel), []).append((message.note, start, now))
        for (channel, note), start in sounding.items():  # never released: ends with the track
            lines.setdefault((index, channel), []).append((note, start, max(now, start + 1)))
    return lines, tempo


def parse(text: str | None = None, midi: bytes | None = None) -> Melody:
    """Text or MIDI bytes (exactly one of them) -> Melody, or BadMelody."""
    if (text is None) == (midi is None):
        raise BadMelody("Give the melody either as text or as a .mid file, not both.")
    return parse_text(text) if text is not None else parse_midi(midi or b"")


# Krumhansl-Kessler key profiles (major, minor), starting on the tonic.
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def estimate_key(melody: Melody) -> str:
    """The likeliest key of a melody (Krumhansl-Schmuckler, weighted by duration).

    Ties go to the key whose tonic is the last note, then to major.
    """
    histogram = np.zeros(12)
    for pitch, _, duration in melody.notes:
        histogram[pitch % 12] += duration
    last = melody.notes[-1][0] % 12
    best, best_score = KEY_NAMES[0], -np.inf
    for index, name in enumerate(KEY_NAMES):
        tonic, minor = index % 12, index >= 12
        profile = np.roll(MINOR_PROFILE if minor else MAJOR_PROFILE, tonic)
        score = float(np.corrcoef(histogram, profile)[0, 1]) if histogram.std() else 0.0
        score += 1e-3 * (tonic == last)
        if score > best_score + 1e-9:
            best, best_score = name, score
    return best
