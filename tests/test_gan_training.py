"""GAN training on a tiny data set: finite losses, exact resume, export parity, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deploy.contracts import GAN
from training.export import run_module
from training.gan import train as gan_train
from training.gan.export import example_inputs, sample_sheet
from training.gan.model import ServedGenerator, diff_augment, load_eager_generator
from training.gan.train import CHECKPOINT, GANTrainer, RunOptions, TrainConfig, load_dataset


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve small pictures: a coloured square on white each."""
    root = tmp_path_factory.mktemp("tiny-images")
    rng = np.random.default_rng(0)
    for i in range(12):
        image = Image.new("RGB", (48, 48), "white")
        x, y = rng.integers(4, 28, 2)
        image.paste(tuple(int(c) for c in rng.integers(0, 255, 3)), (x, y, x + 16, y + 16))
        image.save(root / f"{i:02d}.png")
    return root


def tiny(folder: Path, **changes) -> TrainConfig:
    config = TrainConfig(data=str(folder), g_width=4, d_width=4, batch_size=4, ema_decay=0.9)
    return replace(config, **changes)


def options(run_dir: Path, steps: int, resume: bool = False) -> RunOptions:
    return RunOptions(run_dir, steps=steps, sample_every=2, eval_every=3, eval_images=2,
                      resume=resume, command="test", progress=False)  # fmt: skip


def test_a_few_steps_give_finite_losses(folder: Path, tmp_path: Path) -> None:
    config = tiny(folder, loss="hinge", spectral_norm=True, augment="color,translation,cutout")
    data = load_dataset(config, tmp_path / "cache")
    assert len(data.train) + len(data.held_out) == 12
    trainer = GANTrainer(config, data.train, torch.device("cpu"))
    losses = [trainer.train_step() for _ in range(4)]  # more than one epoch of 11 images
    assert np.isfinite(losses).all() and trainer.epoch == 1


def test_diff_augment_is_seeded_and_keeps_shape() -> None:
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    policy = "color,translation,cutout"
    first = diff_augment(images, policy, torch.Generator().manual_seed(1))
    again = diff_augment(images, policy, torch.Generator().manual_seed(1))
    assert first.shape == images.shape and torch.equal(first, again)
    assert not torch.equal(first, images)


def state_of(run_dir: Path) -> dict:
    state = torch.load(run_dir / CHECKPOINT, weights_only=False)
    return {key: state[key] for key in ("generator", "discriminator", "ema", "opt_g", "opt_d")}


def assert_same(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.parametrize(
    "changes", [{}, {"loss": "hinge", "spectral_norm": True, "augment": "translation"}]
)
def test_resume_equals_uninterrupted_training(folder: Path, tmp_path: Path, changes: dict) -> None:
    config, cache = tiny(folder, **changes), tmp_path / "cache"
    gan_train.train(config, options(tmp_path / "straight", 5), cache)
    gan_train.train(config, options(tmp_path / "resumed", 3), cache)
    trainer = gan_train.train(config, options(tmp_path / "resumed", 5, resume=True), cache)
    assert trainer.step == 5
    assert_same(state_of(tmp_path / "straight"), state_of(tmp_path / "resumed"))
    samples = sorted(p.name for p in (tmp_path / "resumed" / "samples").iterdir())
    assert samples == ["step_000002.png", "step_000003.png", "step_000004.png", "step_000005.png"]
    assert (tmp_path / "resumed" / "training.png").exists()
    assert [step for step, _ in trainer.swd_log] == [3]


def test_export_matches_eager_and_records_metadata(folder: Path, tmp_path: Path) -> None:
    config, cache = tiny(folder), tmp_path / "cache"
    trainer = gan_train.train(config, options(tmp_path / "run", 2), cache)
    version = tmp_path / "gan" / "2"
    path = gan_train.export(tmp_path / "run" / CHECKPOINT, version, cache)  # parity inside
    metadata = json.loads((version / "metadata.json").read_text())
    assert metadata["steps"] == 2 and metadata["seed"] == 0 and metadata["resolution"] == 64
    assert metadata["data_sha256"] == load_dataset(config, cache).sha256
    assert metadata["training_command"] == "test" and metadata["git_commit"]
    assert metadata["swd_x1e3"] > 0 and metadata["swd_real_floor_x1e3"] > 0
    scripted = torch.jit.load(str(path))
    inputs = example_inputs(0.8)
    eager = run_module(load_eager_generator(version), GAN, inputs)["image"]
    np.testing.assert_array_equal(run_module(scripted, GAN, inputs)["image"], eager)
    served = run_module(ServedGenerator(trainer.sampler()), GAN, inputs)["image"]
    np.testing.assert_array_equal(eager, served)
    sheet = Image.open(sample_sheet(path, tmp_path / "samples.png", range(16)))
    assert sheet.size == (8 * 66 + 2, 2 * 66 + 2)


def test_cli_trains_then_evaluates(folder: Path, tmp_path: Path, capsys) -> None:
    common = ["--data", str(folder), "--cache-dir", str(tmp_path / "cache")]
    run = ["--out", str(tmp_path / "run"), "--steps", "1", "--batch-size", "4"]
    assert gan_train.main([*common, *run, "--sample-every", "1", "--eval-every", "0"]) == 0
    assert (tmp_path / "run" / "samples" / "step_000001.png").exists()
    assert gan_train.main([*common, "--eval", str(tmp_path / "run" / CHECKPOINT)]) == 0
    out = capsys.readouterr().out
    assert "generated vs held-out" in out and "real vs real (floor)" in out
    with pytest.raises(SystemExit):
        gan_train.main(common)  # neither --steps nor --minutes


def test_sigterm_saves_the_checkpoint_even_with_sigint_ignored(
    folder: Path, tmp_path: Path
) -> None:
    """`atelier train gan`, started with SIGINT ignored, stops on SIGTERM (/admin cancel)
    after its first progress line, saving its checkpoint."""
    command = [sys.executable, "-m", "bot.cli", "train", "gan", "--data", str(folder),
               "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
               "--steps", "100000", "--batch-size", "4", "--sample-every", "1",
               "--eval-every", "0", "--progress-json"]  # fmt: skip
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, preexec_fn=ignore_sigint
    ) as process:
        assert process.stdout
        lines = iter(process.stdout.readline, "")  # each call blocks for the next line
        first = json.loads(next(line for line in lines if line.startswith("{")))
        process.send_signal(signal.SIGTERM)
        rest = process.stdout.read()
        assert process.wait(timeout=120) == 0, rest
    saved = torch.load(tmp_path / "run" / CHECKPOINT, map_location="cpu", weights_only=False)
    assert saved["step"] >= first["step"] < 100000
    assert "checkpoint" in rest.splitlines()[-1]


def test_128_pixels_train_but_do_not_export_to_the_64_pixel_contract(
    folder: Path, tmp_path: Path
) -> None:
    config, cache = tiny(folder, resolution=128, augment="translation"), tmp_path / "cache"
    trainer = gan_train.train(config, options(tmp_path / "run", 1), cache)
    assert trainer.images.shape[-1] == 128
    with pytest.raises(ValueError, match="64px"):
        gan_train.export(tmp_path / "run" / CHECKPOINT, tmp_path / "gan" / "2", cache)
