"""Music rendering: MIDI, audio of the right length that is not silent, OGG Opus, piano roll."""

import io

import mido
import numpy as np
import pytest
from PIL import Image

from bot.media import audio

# Four voices, one chord per beat for four bars (64 sixteenths).
EVENTS = np.array(
    [[v, p, s, 4] for s in range(0, 64, 4) for v, p in enumerate((72, 67, 64, 48))], np.int64
)


def test_midi_has_a_track_per_voice_and_the_right_length() -> None:
    song = mido.MidiFile(file=io.BytesIO(audio.events_to_midi(EVENTS, tempo=90)))
    assert len(song.tracks) == 1 + 4
    assert song.length == pytest.approx(64 * audio.seconds_per_step(90), abs=1e-3)
    notes = [m.note for m in song.tracks[1] if m.type == "note_on"]
    assert notes == [72] * 16


@pytest.mark.parametrize("renderer", ["fluidsynth", "sine"])
def test_audio_decodes_with_the_expected_length_and_is_not_silent(renderer: str) -> None:
    if renderer == "fluidsynth":
        assert audio.fluidsynth_available(), "libfluidsynth3 and a GM SoundFont are installed"
        samples = audio.render_fluidsynth(EVENTS, tempo=90, program=audio.CHOIR_AAHS)
    else:
        samples = audio.render_sine(EVENTS, tempo=90)
    decoded, rate = audio.decode_audio(audio.encode_opus(samples, comment="seed 1"))
    assert rate == audio.SAMPLE_RATE and decoded.shape[1] == 2
    expected = 64 * audio.seconds_per_step(90) + 1.0  # one second of release
    assert len(decoded) / rate == pytest.approx(expected, abs=0.05)
    playing = decoded[: int(10 * rate)]
    assert np.sqrt(np.mean(playing**2)) > 0.01  # not silent while the notes play


def test_rendering_is_deterministic() -> None:
    first = audio.render(EVENTS, tempo=120)
    np.testing.assert_array_equal(first, audio.render(EVENTS, tempo=120))


def test_piano_roll() -> None:
    image = Image.open(io.BytesIO(audio.piano_roll_png(EVENTS, scale=4)))
    assert image.size == (64 * 4, (72 - 48 + 5) * 4)
