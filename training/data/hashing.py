"""The data hashes kept in every version's metadata (`data_sha256`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np


def array_hash(array: np.ndarray) -> str:
    """sha256 of an array's shape, dtype and bytes."""
    digest = hashlib.sha256(f"{array.shape}{array.dtype}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def named_arrays_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over names and bytes, in name order (photos, music pieces)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).data)
    return digest.hexdigest()
