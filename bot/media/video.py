"""MP4 video from numpy frames, through the ffmpeg binary that the imageio-ffmpeg wheel carries."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from bot.media.images import record_json


def encode_mp4(frames: Sequence[np.ndarray], *, fps: int, record: Mapping[str, Any]) -> bytes:
    """H.264 MP4 (yuv420p, plays everywhere), the record in its `comment` tag.

    One encoder thread and bit-exact flags, so the same frames give the same bytes.
    """
    height, width = frames[0].shape[:2]
    output = [
        "-threads", "1",
        "-fflags", "+bitexact",
        "-flags:v", "+bitexact",
        "-map_metadata", "-1",
        "-metadata", f"comment={record_json(record)}",
        "-movflags", "+faststart",
        "-crf", "18",
        "-preset", "medium",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "walk.mp4"
        writer = imageio_ffmpeg.write_frames(
            str(path),
            (width, height),
            fps=fps,
            codec="libx264",
            quality=None,
            macro_block_size=16,
            output_params=output,
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        return path.read_bytes()


def count_frames(data: bytes) -> int:
    """How many frames an MP4 holds (decodes it with ffmpeg)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        path.write_bytes(data)
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
        return frames
