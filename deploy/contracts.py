"""The tensor contract of every served model, written once.

The export (`training/export.py`), the Triton runner's config (`config.pbtxt`, checked
against this file by the tests) and the bot's inference client all read these
descriptions. `model_repository/README.md` documents the same contracts for people.
This module imports numpy only, so the bot may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Triton datatype name -> numpy dtype.
NUMPY_DTYPES: dict[str, type] = {
    "FP32": np.float32,
    "INT64": np.int64,
    "UINT8": np.uint8,
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor, without the batch dimension."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    low: float | None = None
    high: float | None = None
    doc: str = ""

    @property
    def numpy_dtype(self) -> type:
        return NUMPY_DTYPES[self.dtype]

    def check(self, array: np.ndarray, *, batched: bool = True) -> None:
        """Raise ValueError if `array` breaks this spec (dtype, shape, range, finiteness)."""
        shape = tuple(array.shape[1:] if batched else array.shape)
        if array.dtype != self.numpy_dtype:
            raise ValueError(f"{self.name}: dtype {array.dtype}, expected {self.dtype}")
        fits = len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )
        if not fits:
            raise ValueError(f"{self.name}: shape {shape}, expected {self.shape} (-1: any)")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"{self.name}: contains NaN or Inf")
        if array.size and self.low is not None and array.min() < self.low:
            raise ValueError(f"{self.name}: values below {self.low}")
        if array.size and self.high is not None and array.max() > self.high:
            raise ValueError(f"{self.name}: values above {self.high}")


@dataclass(frozen=True)
class ModelContract:
    """The inputs and outputs of one model in `model_repository/`."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    summary: str

    def input(self, name: str) -> TensorSpec:
        return next(spec for spec in self.inputs if spec.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(spec for spec in self.outputs if spec.name == name)


GAN_LATENT_DIM = 128
GAN_IMAGE_SIZE = 64
SEED_MAX = 2**31 - 1

GAN = ModelContract(
    name="gan",
    inputs=(
        TensorSpec(
            "z", "FP32", (GAN_LATENT_DIM,), doc="latent vector, standard normal: latent_for_seed()"
        ),
        TensorSpec("truncation", "FP32", (1,), 0.0, 2.0, doc="latent scale; below 1 is tamer"),
    ),
    outputs=(
        TensorSpec("image", "UINT8", (GAN_IMAGE_SIZE, GAN_IMAGE_SIZE, 3), 0, 255, doc="RGB, HWC"),
    ),
    max_batch_size=16,
    summary="Image generator: latent vectors to RGB images.",
)

STYLE_MAX_SIDE = 1024  # the longest side the bot sends; the models take any size

_PHOTO_IN = TensorSpec("image", "UINT8", (-1, -1, 3), 0, 255, doc="RGB, HWC, any size")
_PHOTO_OUT = TensorSpec("image", "UINT8", (-1, -1, 3), 0, 255, doc="RGB, same size as input")
_STRENGTH = TensorSpec("strength", "FP32", (1,), 0.0, 1.0, doc="0 = the input, 1 = full style")

STYLE = ModelContract(
    name="style",
    inputs=(
        _PHOTO_IN,
        TensorSpec(
            "style_weights",
            "FP32",
            (-1,),
            0.0,
            1.0,
            doc="one weight per named style (config parameter `styles`), summing to 1",
        ),
        _STRENGTH,
    ),
    outputs=(_PHOTO_OUT,),
    max_batch_size=4,
    summary="Named styles (conditional instance norm): a photo restyled, blendable.",
)

STYLE_ARBITRARY = ModelContract(
    name="style_arbitrary",
    inputs=(
        _PHOTO_IN,
        TensorSpec("style_image", "UINT8", (-1, -1, 3), 0, 255, doc="any picture as the style"),
        _STRENGTH,
    ),
    outputs=(_PHOTO_OUT,),
    max_batch_size=4,
    summary="Arbitrary style: a photo restyled after any other picture.",
)

CONTRACTS: dict[str, ModelContract] = {
    contract.name: contract for contract in (GAN, STYLE, STYLE_ARBITRARY)
}


def latent_for_seed(seed: int, dim: int = GAN_LATENT_DIM) -> np.ndarray:
    """The latent vector of a seed: standard normal float32, the same on every machine."""
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX}")
    return np.random.default_rng(seed).standard_normal(dim, dtype=np.float32)


# --- Music: a 16th-note grid of four voices (soprano, alto, tenor, bass) -----------------
# A grid cell is FREE (the model writes it), REST, HOLD (the voice's previous note goes
# on) or a MIDI pitch where a note starts. A note event is (voice, pitch, start, duration)
# with start and duration in sixteenth notes; bot/media/audio.py renders them.
VOICES = ("soprano", "alto", "tenor", "bass")
FREE, REST, HOLD = -1, 0, 1
PITCH_LOW, PITCH_HIGH = 28, 96  # the model's range (E1..C7); melodies outside it are refused
STEPS_PER_BAR = 16
MUSIC_STYLES = ("chorale", "folk")
DEFAULT_TEMPERATURE = 0.9  # /compose's default; `deploy publish` judges music at it
KEY_NAMES = tuple(
    [f"{n} major" for n in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")]
    + [f"{n} minor" for n in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")]
)  # key index = tonic pitch class + 12 for minor

MUSIC = ModelContract(
    name="music",
    inputs=(
        TensorSpec(
            "given",
            "INT64",
            (-1, len(VOICES)),
            FREE,
            PITCH_HIGH,
            doc="grid [steps, 4]: -1 free, 0 rest, 1 hold, 28-96 a note starting",
        ),
        TensorSpec("style", "INT64", (1,), 0, len(MUSIC_STYLES) - 1, doc="0 chorale, 1 folk"),
        TensorSpec("key", "INT64", (1,), 0, len(KEY_NAMES) - 1, doc="tonic pc, +12 for minor"),
        TensorSpec("seed", "INT64", (1,), 0, SEED_MAX, doc="same seed, same notes"),
        TensorSpec("temperature", "FP32", (1,), 0.05, 2.0, doc="sampling temperature"),
        TensorSpec("top_k", "INT64", (1,), 0, 128, doc="keep the k likeliest tokens; 0: all"),
    ),
    outputs=(
        TensorSpec("grid", "INT64", (-1, len(VOICES)), REST, PITCH_HIGH, doc="the filled grid"),
        TensorSpec(
            "events",
            "INT64",
            (-1, 4),
            -1,
            None,
            doc="(voice, pitch, start, duration) rows; rows of -1 pad a batch",
        ),
    ),
    max_batch_size=4,
    summary="Four-voice music on a 16th-note grid: compose, continue, harmonise.",
)

CONTRACTS["music"] = MUSIC


def grid_to_events(grid: np.ndarray) -> np.ndarray:
    """Note events (voice, pitch, start, duration) of a grid; HOLD after a rest is a rest."""
    events = []
    for voice in range(grid.shape[1]):
        pitch, start = REST, 0
        for step, cell in enumerate([*grid[:, voice].tolist(), REST]):
            if cell == HOLD and pitch != REST:
                continue
            if pitch != REST:
                events.append((voice, pitch, start, step - start))
            pitch, start = (cell, step) if cell >= PITCH_LOW else (REST, step)
    events.sort(key=lambda e: (e[2], e[0]))
    return np.array(events, np.int64).reshape(-1, 4)


def events_to_grid(events: np.ndarray, steps: int, voices: int = len(VOICES)) -> np.ndarray:
    """The grid of note events: onsets, then HOLD for the rest of each note."""
    grid = np.full((steps, voices), REST, np.int64)
    for voice, pitch, start, duration in np.asarray(events).tolist():
        if voice < 0 or start >= steps:
            continue
        grid[start, voice] = pitch
        grid[start + 1 : min(steps, start + duration), voice] = HOLD
    return grid
