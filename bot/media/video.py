"""MP4 video from numpy frames, through the ffmpeg binary that the imageio-ffmpeg wheel carries."""

from __future__ import annotations

import subprocess
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
    ffmpeg is started plainly (no `preexec_fn`, unlike `imageio_ffmpeg.write_frames`), so
    Python spawns it with vfork: a forked child would run gRPC's fork handlers, whose
    poller can crash it before it execs ffmpeg (grpc/grpc#43055).
    """
    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "walk.mp4"
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "warning",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
            "-i", "-",
            "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p",
            "-threads", "1",
            "-fflags", "+bitexact",
            "-flags:v", "+bitexact",
            "-map_metadata", "-1",
            "-metadata", f"comment={record_json(record)}",
            "-movflags", "+faststart",
            "-crf", "18",
            "-preset", "medium",
            str(path),
        ]  # fmt: skip
        pixels = b"".join(np.ascontiguousarray(frame, dtype=np.uint8).tobytes() for frame in frames)
        done = subprocess.run(command, input=pixels, capture_output=True)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace")
            raise RuntimeError(f"ffmpeg exited {done.returncode}: {detail}")
        return path.read_bytes()


def count_frames(data: bytes) -> int:
    """How many frames an MP4 holds (decodes it with ffmpeg)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        path.write_bytes(data)
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
        return frames
