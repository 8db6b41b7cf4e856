"""Sheet music as PNG from note events, through LilyPond (Debian's `lilypond`) when installed.

`lilypond_source` writes the score itself: soprano and alto on a treble staff, tenor and
bass on a bass staff (a staff whose voices are all silent is left out), 4/4, the key's
signature and spelling. `render_score` runs LilyPond in a temporary folder as a
subprocess (the event loop stays free) with a timeout, and returns the PNG with the
piece's record in its `atelier` text chunk, or None when LilyPond is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bot.media.images import encode_png
from deploy.contracts import KEY_NAMES, STEPS_PER_BAR

RESOLUTION = 110  # dpi of the PNG
TIMEOUT_S = 60.0
LETTERS = "cdefgab"
NATURAL = (0, 2, 4, 5, 7, 9, 11)  # pitch class of each letter
MAJOR_STEPS, MINOR_STEPS = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
# Sixteenth counts LilyPond can write as one note: whole, dotted half, half, …
DURATIONS = {16: "1", 12: "2.", 8: "2", 6: "4.", 4: "4", 3: "8.", 2: "8", 1: "16"}


class ScoreError(RuntimeError):
    """LilyPond failed or took too long."""


def lilypond_path() -> str | None:
    return shutil.which("lilypond")


class Speller:
    """Names pitches as LilyPond does (`cis'`, `bes,`), in the spelling of a key."""

    def __init__(self, key: str) -> None:
        tonic_name, mode = key.split()
        self.minor = mode == "minor"
        letter = LETTERS.index(tonic_name[0].lower())
        tonic = KEY_NAMES.index(key) % 12
        steps = MINOR_STEPS if self.minor else MAJOR_STEPS
        self.spelling: dict[int, tuple[int, int]] = {}  # pitch class -> (letter, alteration)
        for degree, step in enumerate(steps):
            self.spelling[(tonic + step) % 12] = self._spell(letter, degree, tonic + step)
        self.fifths = sum(alteration for _, alteration in self.spelling.values())
        self.sharps = self.fifths >= 0  # notes outside the key: sharps or flats
        if self.minor:  # the raised sixth and seventh of the melodic and harmonic minor
            for degree, step in ((5, 9), (6, 11)):
                spelled = self._spell(letter, degree, tonic + step)
                self.spelling.setdefault((tonic + step) % 12, spelled)
        self.tonic = self.name_of(*self.spelling[tonic])

    @staticmethod
    def _spell(tonic_letter: int, degree: int, pitch_class: int) -> tuple[int, int]:
        letter = (tonic_letter + degree) % 7
        return letter, (pitch_class - NATURAL[letter] + 6) % 12 - 6

    @staticmethod
    def name_of(letter: int, alteration: int) -> str:
        suffix = "is" * alteration if alteration > 0 else "es" * -alteration
        return LETTERS[letter] + suffix

    def pitch(self, midi: int) -> str:
        pc = midi % 12
        if pc in self.spelling:
            letter, alteration = self.spelling[pc]
        else:
            if self.sharps:
                natural = max(n for n in NATURAL if n <= pc)
            else:
                natural = min(n for n in (*NATURAL, 12) if n >= pc) % 12
            letter = NATURAL.index(natural)
            alteration = (pc - natural + 6) % 12 - 6
        octave = (midi - alteration - NATURAL[letter]) // 12 - 1  # scientific: C4 = 60
        marks = "'" * (octave - 3) if octave >= 3 else "," * (3 - octave)
        return self.name_of(letter, alteration) + marks


def split_duration(start: int, length: int) -> list[int]:
    """A note's length in writable pieces, broken at bar lines (they are tied together)."""
    pieces = []
    while length > 0:
        room = min(length, STEPS_PER_BAR - start % STEPS_PER_BAR)
        piece = max(d for d in DURATIONS if d <= room)
        pieces.append(piece)
        start, length = start + piece, length - piece
    return pieces


def voice_music(events: np.ndarray, voice: int, steps: int, speller: Speller) -> str:
    """One voice as LilyPond notes and rests, in absolute octaves."""
    words, now = [], 0
    notes = sorted((int(s), int(d), int(p)) for v, p, s, d in events.tolist() if v == voice)
    for start, duration, pitch in notes:
        if start < now:  # overlapping notes in one voice: keep the earlier one
            continue
        words += [f"r{DURATIONS[p]}" for p in split_duration(now, start - now)]
        name = speller.pitch(pitch)
        pieces = split_duration(start, duration)
        words += [f"{name}{DURATIONS[p]}{'~' if i < len(pieces) - 1 else ''}"
                  for i, p in enumerate(pieces)]  # fmt: skip
        now = start + duration
    words += [f"r{DURATIONS[p]}" for p in split_duration(now, max(0, steps - now))]
    return " ".join(words)


def lilypond_source(events: np.ndarray, *, key: str, tempo: float, steps: int) -> str:
    """A complete .ly file: four voices on two staves (silent staves left out)."""
    speller = Speller(key)
    events = np.asarray(events).reshape(-1, 4)
    voices = {int(v) for v in events[:, 0]}
    mode = "minor" if speller.minor else "major"
    head = f"\\key {speller.tonic} \\{mode} \\time 4/4"
    staves = []
    for clef, pair in (("treble", (0, 1)), ("bass", (2, 3))):
        present = [v for v in pair if v in voices]
        if not present:
            continue
        if len(present) == 1:
            body = f"\\new Voice {{ {voice_music(events, present[0], steps, speller)} }}"
        else:
            upper, lower = (voice_music(events, v, steps, speller) for v in pair)
            body = f"\\new Voice {{ \\voiceOne {upper} }}\n    \\new Voice {{ \\voiceTwo {lower} }}"
        tempo_mark = "" if staves else f" \\tempo 4 = {round(tempo)}"
        staves.append(f"  \\new Staff << \\clef {clef} {head}{tempo_mark}\n    {body}\n  >>")
    return (
        '\\version "2.24.0"\n'
        "\\header { tagline = ##f }\n"
        "\\paper { indent = 0 page-breaking = #ly:one-page-breaking "
        "print-page-number = ##f }\n"
        "\\score {\n"
        "  \\new StaffGroup <<\n" + "\n".join(staves) + "\n  >>\n"
        "  \\layout { }\n"
        "}\n"
    )


async def render_score(
    events: np.ndarray,
    *,
    key: str,
    tempo: float,
    steps: int,
    record: Mapping[str, Any],
    resolution: int = RESOLUTION,
    timeout_s: float = TIMEOUT_S,
) -> bytes | None:
    """The score as a cropped PNG with `record`; None without LilyPond, ScoreError on failure."""
    lilypond = lilypond_path()
    if lilypond is None:
        return None
    source = lilypond_source(events, key=key, tempo=tempo, steps=steps)
    with tempfile.TemporaryDirectory(prefix="atelier-score-") as folder:
        (Path(folder) / "score.ly").write_text(source)
        process = await asyncio.create_subprocess_exec(
            lilypond, "--png", f"-dresolution={resolution}", "-dcrop", "-dno-point-and-click",
            "-lERROR", "-o", "score", "score.ly",
            cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise ScoreError(f"LilyPond took longer than {timeout_s:g} s") from None
        pages = sorted(Path(folder).glob("score*.cropped.png")) or sorted(
            Path(folder).glob("score*.png")
        )
        if process.returncode != 0 or not pages:
            text = output.decode(errors="replace")[-500:]
            raise ScoreError(f"LilyPond failed ({process.returncode}): {text}")
        data = pages[0].read_bytes()
    return await asyncio.to_thread(_with_record, data, record)


def _with_record(data: bytes, record: Mapping[str, Any]) -> bytes:
    """LilyPond's PNG re-encoded as RGB on white with the record in its text chunk."""
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, "white")
        canvas.alpha_composite(image)
        pixels = np.asarray(canvas.convert("RGB"))
    return encode_png(pixels, record)
