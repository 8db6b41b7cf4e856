"""TorchScript export: parity with eager, contract checks, and the committed model's origin."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deploy.contracts import GAN
from training.export import MODEL_FILE, export_model, lineage, run_module
from training.gan.export import example_inputs, export_untrained
from training.gan.model import Generator, GeneratorConfig, ServedGenerator

COMMITTED = Path(__file__).resolve().parent.parent / "model_repository" / "gan" / "1"


def test_export_writes_model_and_metadata(tmp_path: Path) -> None:
    path = export_untrained(tmp_path / "1", seed=3)
    metadata = json.loads((tmp_path / "1" / "metadata.json").read_text())
    assert metadata["model"] == "gan" and metadata["init_seed"] == 3
    assert metadata["git_commit"] and metadata["training_command"]
    scripted = torch.jit.load(str(path))
    torch.manual_seed(3)
    eager = ServedGenerator(Generator(GeneratorConfig()))
    inputs = example_inputs(0.7)
    np.testing.assert_array_equal(
        run_module(scripted, GAN, inputs)["image"], run_module(eager, GAN, inputs)["image"]
    )


def test_committed_model_is_the_seeded_init() -> None:
    """model_repository/gan/1 is exactly what `atelier train gan-init --seed 0` exports."""
    committed = torch.jit.load(str(COMMITTED / MODEL_FILE))
    torch.manual_seed(json.loads((COMMITTED / "metadata.json").read_text())["init_seed"])
    eager = ServedGenerator(Generator(GeneratorConfig()))
    out = run_module(committed, GAN, example_inputs())["image"]
    np.testing.assert_array_equal(out, run_module(eager, GAN, example_inputs())["image"])
    assert out.dtype == np.uint8 and out.shape == (4, 64, 64, 3)


def test_served_generator_rejects_bad_truncation() -> None:
    scripted = torch.jit.script(ServedGenerator(Generator(GeneratorConfig())))
    with pytest.raises(torch.jit.Error, match="truncation"):
        scripted(torch.zeros(1, 128), torch.full((1, 1), 3.0))


class WrongDtype(nn.Module):
    def forward(self, z: torch.Tensor, truncation: torch.Tensor) -> torch.Tensor:
        return torch.zeros(z.shape[0], 64, 64, 3)  # float, not uint8


def test_export_refuses_a_contract_breach(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        export_model(WrongDtype(), GAN, example_inputs(), tmp_path / "1", {})
    assert not (tmp_path / "1" / MODEL_FILE).exists()


def test_lineage_continues_the_commands_and_steps_of_the_version_before() -> None:
    """A run from --init records the commands behind its start, oldest first, and all steps;
    versions from before `training_commands` had only `training_command`."""
    first = lineage({}, "train a", 10)
    assert first == {"steps_total": 10, "training_commands": ["train a"]}
    second = lineage({**first, "steps": 10}, "train b", 5)
    assert second == {"steps_total": 15, "training_commands": ["train a", "train b"]}
    old = lineage({"training_command": "train old", "steps": 7}, "train c", 1)
    assert old == {"steps_total": 8, "training_commands": ["train old", "train c"]}
