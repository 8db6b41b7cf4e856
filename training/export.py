"""TorchScript export and the parity checks shared by every model.

`export_model` scripts a module, saves it into a model version folder with its
metadata, reloads the file and checks it against the eager module and the model's
contract (deploy/contracts.py). A file that fails a check is never left behind.

`save_checkpoint` keeps a training run's eager weights with the metadata that rebuilds
the module; `atelier deploy publish MODEL CHECKPOINT` exports it (deploy/validation.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deploy.contracts import ModelContract

MODEL_FILE = "model.pt"
METADATA_FILE = "metadata.json"
CHECKPOINT_FILE = "checkpoint.pt"


def export_model(
    module: nn.Module,
    contract: ModelContract,
    example_inputs: dict[str, np.ndarray],
    version_dir: Path,
    metadata: dict[str, Any],
) -> Path:
    """Script `module`, check it, and write `version_dir/model.pt` and `metadata.json`."""
    module = module.eval()
    scripted = torch.jit.script(module)
    version_dir.mkdir(parents=True, exist_ok=True)
    path = version_dir / MODEL_FILE
    scripted.save(str(path))
    try:
        check_parity(module, torch.jit.load(str(path)), contract, example_inputs)
    except Exception:
        path.unlink()
        raise
    record = {"model": contract.name, "git_commit": git_commit(), **metadata}
    (version_dir / METADATA_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def lineage(earlier: dict[str, Any], command: str, steps: int) -> dict[str, Any]:
    """What a version continues: `steps_total` (its steps and those before it) and
    `training_commands` (oldest first), from `earlier`, the metadata of the version it
    continued from ({} if none), and this run's `command` and `steps`."""
    before = earlier.get("training_commands") or [earlier.get("training_command")]
    return {
        "steps_total": earlier.get("steps_total", earlier.get("steps", 0)) + steps,
        "training_commands": [*(c for c in before if c), command],
    }


def save_checkpoint(
    module: nn.Module, contract: ModelContract, metadata: dict[str, Any], path: Path
) -> Path:
    """Save the served module's eager weights and its metadata (written whole or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"model": contract.name, "state_dict": module.state_dict(), "metadata": metadata}
    temporary = path.with_name(path.name + ".tmp")
    torch.save(record, temporary)
    temporary.replace(path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A `save_checkpoint` record: {"model", "state_dict", "metadata"} (tensors and JSON only)."""
    record = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(record, dict) or not {"model", "state_dict", "metadata"} <= record.keys():
        raise ValueError(f"{path} is not an Atelier checkpoint (model, state_dict, metadata)")
    return record


def run_module(
    module: nn.Module,
    contract: ModelContract,
    inputs: dict[str, np.ndarray],
    autocast: torch.dtype | None = None,
) -> dict:
    """Call a module with contract-ordered numpy inputs, on the CPU under `autocast` when
    given, as the runner does; return contract-named numpy outputs."""
    tensors = [torch.from_numpy(inputs[spec.name]) for spec in contract.inputs]
    cast = torch.autocast("cpu", dtype=autocast, enabled=autocast is not None)
    with torch.inference_mode(), cast:
        result = module(*tensors)
    outputs = result if isinstance(result, tuple | list) else (result,)
    return {
        spec.name: out.cpu().numpy() for spec, out in zip(contract.outputs, outputs, strict=True)
    }


def check_parity(
    eager: nn.Module,
    scripted: torch.jit.ScriptModule,
    contract: ModelContract,
    inputs: dict[str, np.ndarray],
) -> None:
    """Raise AssertionError unless scripted == eager, outputs meet the contract, runs repeat."""
    for spec in contract.inputs:
        spec.check(inputs[spec.name])
    expected = run_module(eager, contract, inputs)
    got = run_module(scripted, contract, inputs)
    again = run_module(scripted, contract, inputs)
    for spec in contract.outputs:
        spec.check(got[spec.name])
        np.testing.assert_array_equal(got[spec.name], expected[spec.name], err_msg="eager")
        np.testing.assert_array_equal(got[spec.name], again[spec.name], err_msg="determinism")


def git_commit() -> str:
    """The current git commit, or "unknown" outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()
