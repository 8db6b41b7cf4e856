"""Music from note events: MIDI files, audio (FluidSynth, or sine tones without it), OGG Opus.

A note event is one row of an int array: (voice, MIDI pitch, start, duration), with
start and duration counted in sixteenth notes.
"""

from __future__ import annotations

import ctypes.util
import io
from pathlib import Path

import mido
import numpy as np
import soundfile

from deploy.piano_roll import piano_roll

SAMPLE_RATE = 48_000
TICKS_PER_BEAT = 480
TICKS_PER_STEP = TICKS_PER_BEAT // 4  # a sixteenth note
SOUNDFONTS = (  # Debian's General MIDI fonts, best first
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
CHOIR_AAHS = 52  # General MIDI program numbers, 0-based
VOICE_VELOCITY = (84, 72, 72, 78)  # soprano and bass a little louder


def seconds_per_step(tempo: float) -> float:
    """Length of a sixteenth note at `tempo` quarter notes per minute."""
    return 60.0 / tempo / 4


def events_to_midi(events: np.ndarray, *, tempo: float, program: int = CHOIR_AAHS) -> bytes:
    """A type-1 MIDI file: one track (and channel) per voice."""
    song = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    song.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo))]))
    for voice in sorted({int(v) for v in events[:, 0]}):
        notes = events[events[:, 0] == voice]
        song.tracks.append(voice_track(notes, voice, program))
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def voice_track(notes: np.ndarray, voice: int, program: int) -> mido.MidiTrack:
    """Note-on/off messages of one voice, in time order, with delta times in ticks."""
    channel = voice % 16
    velocity = VOICE_VELOCITY[voice % len(VOICE_VELOCITY)]
    timed = []
    for _, pitch, start, duration in notes.tolist():
        timed.append(
            (
                start * TICKS_PER_STEP,
                1,
                mido.Message("note_on", channel=channel, note=pitch, velocity=velocity),
            )
        )
        timed.append(
            (
                (start + duration) * TICKS_PER_STEP,
                0,
                mido.Message("note_off", channel=channel, note=pitch),
            )
        )
    timed.sort(key=lambda item: (item[0], item[1]))  # offs before ons at the same tick
    track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program)])
    now = 0
    for tick, _, message in timed:
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def soundfont() -> Path | None:
    return next((path for path in SOUNDFONTS if path.exists()), None)


def fluidsynth_available() -> bool:
    return ctypes.util.find_library("fluidsynth") is not None and soundfont() is not None


def render(events: np.ndarray, *, tempo: float, program: int = CHOIR_AAHS) -> np.ndarray:
    """Stereo float32 audio at SAMPLE_RATE: FluidSynth with a GM SoundFont, else sine tones."""
    if fluidsynth_available():
        return render_fluidsynth(events, tempo=tempo, program=program)
    return render_sine(events, tempo=tempo)


def _schedule(events: np.ndarray, tempo: float) -> list[tuple[int, bool, int, int]]:
    """(sample, is_on, voice, pitch), in time order with note-offs first."""
    step = seconds_per_step(tempo) * SAMPLE_RATE
    points = []
    for voice, pitch, start, duration in events.tolist():
        points.append((round(start * step), True, voice, pitch))
        points.append((round((start + duration) * step), False, voice, pitch))
    return sorted(points, key=lambda p: (p[0], p[1]))


def render_fluidsynth(events: np.ndarray, *, tempo: float, program: int) -> np.ndarray:
    """Offline FluidSynth rendering, no audio device: samples are pulled between events."""
    import fluidsynth  # only needed here; binds libfluidsynth

    synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), gain=0.5)
    try:
        font = synth.sfload(str(soundfont()))
        for voice in range(int(events[:, 0].max()) + 1 if len(events) else 0):
            synth.program_select(voice % 16, font, 0, program)
        chunks, now = [], 0
        for sample, is_on, voice, pitch in _schedule(events, tempo):
            if sample > now:
                chunks.append(synth.get_samples(sample - now))
                now = sample
            if is_on:
                synth.noteon(voice % 16, pitch, VOICE_VELOCITY[voice % len(VOICE_VELOCITY)])
            else:
                synth.noteoff(voice % 16, pitch)
        chunks.append(synth.get_samples(SAMPLE_RATE))  # one second of release
    finally:
        synth.delete()
    interleaved = np.concatenate(chunks).astype(np.float32) / 32768.0
    return interleaved.reshape(-1, 2)


def render_sine(events: np.ndarray, *, tempo: float) -> np.ndarray:
    """The fallback without FluidSynth: a soft sine tone per note, in stereo."""
    step = seconds_per_step(tempo) * SAMPLE_RATE
    length = round((events[:, 2] + events[:, 3]).max() * step) + SAMPLE_RATE if len(events) else 1
    audio = np.zeros(length, np.float32)
    for _, pitch, start, duration in events.tolist():
        begin, count = round(start * step), round(duration * step)
        t = np.arange(count) / SAMPLE_RATE
        envelope = np.minimum(1.0, np.minimum(t, (count - 1) / SAMPLE_RATE - t) / 0.01)
        frequency = 440.0 * 2 ** ((pitch - 69) / 12)
        audio[begin : begin + count] += 0.15 * np.sin(2 * np.pi * frequency * t) * envelope
    return np.repeat(np.clip(audio, -1, 1)[:, None], 2, axis=1)


def encode_opus(audio: np.ndarray, *, comment: str = "") -> bytes:
    """OGG Opus at 48 kHz (plays inside Discord), with `comment` in its tags."""
    buffer = io.BytesIO()
    with soundfile.SoundFile(
        buffer, "w", SAMPLE_RATE, audio.shape[1], format="OGG", subtype="OPUS"
    ) as out:
        if comment:
            out.comment = comment
        out.write(audio)
    return buffer.getvalue()


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decoded samples and sample rate of any file soundfile reads."""
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def piano_roll_png(events: np.ndarray, *, scale: int = 6) -> bytes:
    """A piano roll as PNG: time left to right, pitch bottom to top, one colour per voice."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(piano_roll(events, scale=scale)).save(buffer, format="PNG")
    return buffer.getvalue()
