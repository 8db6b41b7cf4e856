"""Piano-roll pictures of note events, numpy only: the bot attaches them to /compose and
training writes them as samples (both import this one function)."""

from __future__ import annotations

import numpy as np

VOICE_COLOURS = ((220, 60, 60), (60, 160, 60), (60, 100, 220), (160, 90, 200))


def piano_roll(events: np.ndarray, *, scale: int = 6) -> np.ndarray:
    """uint8 RGB [pitches * scale, steps * scale, 3]: time left to right, pitch bottom to
    top, one colour per voice, a grey line at every bar (16 steps)."""
    events = np.asarray(events).reshape(-1, 4)
    events = events[events[:, 0] >= 0]
    if not len(events):
        return np.full((scale, 16 * scale, 3), 250, np.uint8)
    low, high = int(events[:, 1].min()) - 2, int(events[:, 1].max()) + 2
    steps = int((events[:, 2] + events[:, 3]).max())
    canvas = np.full(((high - low + 1) * scale, steps * scale, 3), 250, np.uint8)
    canvas[:, :: 16 * scale] = (200, 200, 200)
    for voice, pitch, start, duration in events.tolist():
        row = (high - pitch) * scale
        canvas[row + 1 : row + scale - 1, start * scale + 1 : (start + duration) * scale - 1] = (
            VOICE_COLOURS[voice % len(VOICE_COLOURS)]
        )
    return canvas
