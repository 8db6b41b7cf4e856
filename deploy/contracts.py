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
        if shape != self.shape:
            raise ValueError(f"{self.name}: shape {shape}, expected {self.shape}")
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

CONTRACTS: dict[str, ModelContract] = {GAN.name: GAN}


def latent_for_seed(seed: int, dim: int = GAN_LATENT_DIM) -> np.ndarray:
    """The latent vector of a seed: standard normal float32, the same on every machine."""
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be between 0 and {SEED_MAX}")
    return np.random.default_rng(seed).standard_normal(dim, dtype=np.float32)
