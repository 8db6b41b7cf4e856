"""The `atelier` command: selftest, imagine, and the rule that the bot never imports torch."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from bot.media.images import read_png_record
from deploy.triton import LocalTriton
from tests.helpers import local_images

ROOT = Path(__file__).resolve().parent.parent
ATELIER = [sys.executable, "-m", "bot.cli"]


def run(args: list[str], tmp_path: Path, timeout: float, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ATELIER_STATE_DIR": str(tmp_path / "state"), **env}
    environment.pop("DISCORD_TOKEN", None)
    environment.pop("TRITON_URL", None)
    environment.update(env)
    return subprocess.run(
        ATELIER + args, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout
    )


def test_selftest_exits_zero(tmp_path: Path) -> None:
    result = run(["selftest"], tmp_path, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   /imagine " in result.stdout and "ok   /status " in result.stdout
    assert "ok   /imagine V/U" in result.stdout and "ok   /compose" in result.stdout
    assert (tmp_path / "state" / "atelier.db").exists()


def test_imagine_cli_writes_pngs_through_triton(tmp_path: Path, triton: LocalTriton) -> None:
    out = tmp_path / "out"
    args = ["imagine", "--seed", "5", "--n", "3", "--truncation", "0.9", "--out", str(out)]
    result = run(args, tmp_path, timeout=120, TRITON_URL=triton.grpc_url)
    assert result.returncode == 0, result.stderr
    paths = sorted(out.glob("*.png"))
    assert [read_png_record(p.read_bytes())["seed"] for p in paths] == [5, 6, 7]
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(p.read_bytes()))) for p in paths])
    np.testing.assert_array_equal(pixels, local_images([5, 6, 7], 0.9))


def test_bot_never_imports_torch() -> None:
    modules = (
        "bot.cli, bot.app, bot.stack, bot.selftest, bot.cogs.imagine, bot.cogs.status, "
        "bot.cogs.style, bot.pipelines.style, bot.views.imagine, bot.media.audio, bot.cogs.admin"
    )
    code = f"import sys, {modules}; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_style_cli_lists_and_restyles(tmp_path: Path, triton: LocalTriton) -> None:
    listed = run(["style", "--list"], tmp_path, timeout=60, TRITON_URL=triton.grpc_url)
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    assert len(names) >= 12
    source = tmp_path / "in.png"
    Image.new("RGB", (30, 20), "orange").save(source)
    out = tmp_path / "out.png"
    args = ["style", str(source), "--style", names[0], "--strength", "0.5", "--out", str(out)]
    result = run(args, tmp_path, timeout=60, TRITON_URL=triton.grpc_url)
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (30, 20)
    assert read_png_record(out.read_bytes())["params"] == {"style": names[0], "strength": 0.5}
    bad = run(["style", str(source), "--style", "nope", "--out", str(out)], tmp_path, 60,
              TRITON_URL=triton.grpc_url)  # fmt: skip
    assert bad.returncode == 1 and "no style called `nope`" in bad.stderr
