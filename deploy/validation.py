"""The checks a candidate version must pass before any Triton sees it (torch: publish only).

`validate` runs them in order on a staged version folder (`model.pt` + `metadata.json`)
and returns a report of what it measured; the first failure raises `ValidationError`:

1. load: the TorchScript file loads;
2. metadata: it records the training command and the data hash;
3. contract: outputs on example inputs have the contract's names, dtypes, shapes, ranges;
4. finite: no NaN or Inf in the weights or in the model's float output before quantising;
5. eager: the TorchScript output equals the eager module's, bit for bit;
6. determinism: the same inputs give the same outputs, alone or in a batch;
7. latency: a full batch runs within the budget on this machine;
8. quality: the model's quality metric is no worse than the live version's by more than a
   margin (`allow_worse` overrides).

Steps 3, 6, 7 and 8 run the model in the precision Triton serves it in on this machine
(`ValidationOptions.autocast`, which `publish` sets from `served_autocast`); step 5
compares both in float32. The quality record names the precision, and a live version's
record measured in another precision is measured again.

What differs between models lives in a `Profile` (one per model; lower quality numbers
are better for all of them):

- `gan`: the sliced Wasserstein distance (training/metrics/swd.py, ×1e3) between images of
  fixed latents and held-out real images of the candidate's data set: the number
  `atelier train gan --eval` reports, on the first `quality_images` held-out images.
- `style`: for each named style, the style distance (training/metrics/style.py) between the
  model's outputs on two held-out photos (skimage's astronaut and coffee), averaged over
  the styles: a style that looks the same whatever the photo scores low, a model that
  passes the photo through scores the photos' own distance.
- `style_arbitrary`: the style distance between the output and the style image, for two
  held-out photos × two style images never trained on (skimage's hubble and retina).
- `music`: eight 8-bar pieces composed from nothing (chorale, four major and four minor
  keys, fixed seeds, /compose's default temperature); the sum over pc_entropy, in_key,
  notes_per_beat and pitch_range (training/metrics/music.py) of |mean over the pieces −
  Bach's mean| / Bach's sd.

SOURCE is an exported version folder or a training checkpoint: `gan` reads its trainer's
checkpoint (training/gan/train.py); the others read `save_checkpoint` records
(training/export.py) that their training runs leave in the run folder. A checkpoint is
exported here; either way the eager module is rebuilt from the metadata and the
TorchScript file's output must equal it.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deploy.backend.model import autocast_dtype, precision_name
from deploy.contracts import GAN, MUSIC, STYLE, STYLE_ARBITRARY, ModelContract
from deploy.repository import METADATA_FILE, DeployError, ModelRepository, Version
from training.export import MODEL_FILE, run_module

REQUIRED_METADATA = ("training_command", "data_sha256")
Progress = Callable[[str], None]


def served_autocast(repository: ModelRepository, model: str) -> torch.dtype | None:
    """The dtype the runner autocasts `model` to on this machine's CPU (None: float32)."""
    name = repository.parameters(model).get("autocast", "")
    return autocast_dtype(name, torch.device("cpu"))


class ValidationError(DeployError):
    """A candidate failed a check: `step` names it, the message says why."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"refused at {step}: {message}")
        self.step = step


@dataclass
class ValidationOptions:
    latency_budget_ms: float | None = None  # one full batch; None: the profile's budget
    margin: float = 0.15  # relative: candidate may be at most 15 % worse than live
    allow_worse: bool = False
    quality_images: int = 128
    quality_data: str | None = None  # data set for the quality metric; default: the candidate's
    settings: dict[str, Any] = field(default_factory=dict)  # a checkpoint's, changed on export
    autocast: torch.dtype | None = None  # the precision Triton serves it in (served_autocast)


@dataclass
class Quality:
    """A quality measurement; comparable when metric, data hash, image count and precision
    agree (records from before precision was kept were measured in float32)."""

    metric: str
    value: float
    data: str
    data_sha256: str
    images: int
    lower_is_better: bool = True
    precision: str = "float32"

    def same_test(self, other: dict[str, Any]) -> bool:
        keys = ("metric", "data_sha256", "images")
        same = all(other.get(key) == getattr(self, key) for key in keys)
        return same and other.get("precision", "float32") == self.precision


class Profile:
    """What validation needs to know about one model."""

    contract: ModelContract
    latency_budget_ms: float = 2000.0  # one full batch (the contract's max_batch_size)
    settings: tuple[str, ...] = ()  # metadata keys that publishing may change (`settings`)

    def stage(self, source: Path, staging: Path, settings: dict[str, Any] | None = None) -> None:
        """Put `model.pt` and `metadata.json` for `source` into `staging`: a version folder
        is copied, a training checkpoint (training/export.py) is exported; with `settings`,
        either is exported again with them in place of its own."""
        settings = settings or {}
        self.check_settings(settings)
        if source.is_dir() and not settings:
            copy_version(source, staging)
        elif source.is_dir():
            metadata = {**json.loads((source / METADATA_FILE).read_text()), **settings}
            export_weights(self, self.eager(source).state_dict(), metadata, staging)
        else:
            refuse_bare_torchscript(source)
            export_checkpoint(self, source, staging, settings)

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Refuse settings the model lacks."""
        if unknown := sorted(set(settings) - set(self.settings)):
            known = ", ".join(self.settings) or "none"
            message = f"{self.contract.name} has no setting {', '.join(unknown)} (it has: {known})"
            raise ValidationError("export", message)

    def missing_metadata(self, metadata: dict[str, Any]) -> list[str]:
        """The records the metadata lacks (how the version was made)."""
        return [key for key in REQUIRED_METADATA if not metadata.get(key)]

    def example_inputs(self, metadata: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Example inputs of the contract (`metadata`: of the version they are for)."""
        raise NotImplementedError

    def build_eager(self, metadata: dict[str, Any]) -> nn.Module:
        """The eager module (untrained weights) that a version's metadata describes."""
        raise NotImplementedError

    def eager(self, version_dir: Path) -> nn.Module:
        """The eager module the TorchScript file was made from: built from the metadata,
        with the file's weights."""
        metadata = json.loads((version_dir / METADATA_FILE).read_text())
        try:
            module = self.build_eager(metadata)
        except (KeyError, TypeError, ValueError) as error:
            message = f"metadata.json does not describe a {self.contract.name} network: {error!r}"
            raise ValidationError("eager", message) from error
        scripted = torch.jit.load(str(version_dir / MODEL_FILE), map_location="cpu")
        expected = module.state_dict().keys()  # leaves out non-persistent buffers
        weights = {k: v for k, v in scripted.state_dict().items() if k in expected}
        try:
            module.load_state_dict(weights)
        except RuntimeError as error:
            message = f"the weights do not fit the metadata's network: {first_line(error)}"
            raise ValidationError("eager", message) from error
        return module.eval()

    def raw_outputs(self, eager: nn.Module, inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
        """Float outputs before any quantisation (where NaN would otherwise hide)."""
        raise NotImplementedError

    def quality(
        self, model: torch.jit.ScriptModule, metadata: dict, options: ValidationOptions
    ) -> Quality:
        raise NotImplementedError


class GanProfile(Profile):
    """The image generator: a training checkpoint or an exported version folder."""

    contract = GAN

    def stage(self, source: Path, staging: Path, settings: dict[str, Any] | None = None) -> None:
        self.check_settings(settings or {})
        if source.is_dir():
            copy_version(source, staging)
        else:  # a training checkpoint of `atelier train gan`
            from training.gan.train import export

            refuse_bare_torchscript(source)

            try:
                export(source, staging)
            except Exception as error:
                raise ValidationError("export", f"{type(error).__name__}: {error}") from error

    def example_inputs(self, metadata: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        from training.gan.export import example_inputs

        return example_inputs(0.9)

    def eager(self, version_dir: Path) -> nn.Module:
        from training.gan.model import load_eager_generator

        return load_eager_generator(version_dir)

    def raw_outputs(self, eager: nn.Module, inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
        z = torch.from_numpy(inputs["z"]) * torch.from_numpy(inputs["truncation"])
        with torch.inference_mode():
            return [eager.generator(z)]

    def quality(
        self, model: torch.jit.ScriptModule, metadata: dict, options: ValidationOptions
    ) -> Quality:
        from training.gan.train import EVAL_SEED, TrainConfig, eval_latents, load_dataset
        from training.metrics.swd import sliced_wasserstein

        data_name = options.quality_data or metadata.get("data", "emoji")
        holdout = metadata.get("training_config", {}).get("holdout", 0.1)
        data = load_dataset(TrainConfig(data=data_name, resolution=64, holdout=holdout))
        real = data.held_out[: options.quality_images]
        z = eval_latents(len(real))
        fakes = run_module(
            model,
            GAN,
            {"z": z, "truncation": np.ones((len(z), 1), np.float32)},
            options.autocast,
        )
        swd = sliced_wasserstein(fakes["image"], real, seed=EVAL_SEED)
        return Quality("swd_x1e3", round(swd.average, 3), data_name, data.sha256, len(real))


def refuse_bare_torchscript(source: Path) -> None:
    """A TorchScript file alone says nothing of how it was made: ask for its folder."""
    if source.is_file() and is_torchscript(source):
        raise ValidationError(
            "metadata",
            f"{source} is a bare TorchScript file; give its version folder "
            "(model.pt + metadata.json) so the version records how it was made",
        )


def export_checkpoint(
    profile: Profile, source: Path, staging: Path, settings: dict[str, Any]
) -> None:
    """Export a `save_checkpoint` record into `staging` with `settings` in its metadata."""
    from training.export import load_checkpoint

    name = profile.contract.name
    try:
        record = load_checkpoint(source)
    except Exception as error:
        message = f"{source} is not a readable checkpoint: {first_line(error)}"
        raise ValidationError("export", message) from error
    if record["model"] != name:
        raise ValidationError("export", f"{source} is a {record['model']} checkpoint, not {name}")
    metadata = {**record["metadata"], **settings, "checkpoint": str(source)}
    export_weights(profile, record["state_dict"], metadata, staging)


def export_weights(
    profile: Profile, weights: dict[str, torch.Tensor], metadata: dict[str, Any], staging: Path
) -> None:
    """Export the network `metadata` describes, with `weights`, into `staging`
    (export_model checks the parity)."""
    from training.export import export_model

    try:
        module = profile.build_eager(metadata)
        module.load_state_dict(weights)
        inputs = profile.example_inputs(metadata)
        export_model(module, profile.contract, inputs, staging, metadata)
    except Exception as error:
        raise ValidationError("export", f"{type(error).__name__}: {first_line(error)}") from error


HELD_OUT_PHOTOS = ("astronaut.png", "coffee.png")  # held out of style training (photos.py)
EVAL_STYLE_IMAGES = ("hubble_deep_field.jpg", "retina.jpg")  # never trained on
QUALITY_SIDE = 256  # photos are center-cropped and resized to this square


def skimage_images(names: tuple[str, ...]) -> list[np.ndarray]:
    """Images shipped in scikit-image's wheel, center-cropped to QUALITY_SIDE² (uint8)."""
    import skimage
    from PIL import Image

    from training.style.train import center_square

    folder = Path(skimage.__file__).parent / "data"
    images = []
    for name in names:
        with Image.open(folder / name) as image:
            images.append(np.array(center_square(np.asarray(image.convert("RGB")), QUALITY_SIDE)))
    return images


def images_sha256(images: list[np.ndarray]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for image in images:
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


class StyleProfile(Profile):
    """Named styles: an exported version folder of `atelier train style`."""

    contract = STYLE
    settings = ("work_side",)

    def example_inputs(self, metadata: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Inputs for as many styles as the version's metadata names (its export's count)."""
        from training.style.export import style_inputs

        if not metadata or not metadata.get("styles"):
            raise ValidationError("metadata", "metadata.json names no styles")
        return style_inputs(len(metadata["styles"]))

    def build_eager(self, metadata: dict[str, Any]) -> nn.Module:
        from training.style.export import build_style

        return build_style(metadata)

    def raw_outputs(self, eager: nn.Module, inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
        from training.style.model import to_network

        weights = torch.from_numpy(inputs["style_weights"])
        with torch.inference_mode():
            image = to_network(torch.from_numpy(inputs["image"]))
            return [eager.net(image, weights / weights.sum(dim=1, keepdim=True))]

    def quality(
        self, model: torch.jit.ScriptModule, metadata: dict, options: ValidationOptions
    ) -> Quality:
        from training.metrics.style import style_distance

        photos = skimage_images(HELD_OUT_PHOTOS)
        count = len(list(model.style_names))
        distances = []
        for style in range(count):
            weights = np.zeros((len(photos), count), np.float32)
            weights[:, style] = 1.0
            inputs = {
                "image": np.stack(photos),
                "style_weights": weights,
                "strength": np.ones((len(photos), 1), np.float32),
            }
            first, second = run_module(model, STYLE, inputs, options.autocast)["image"]
            distances.append(style_distance(first, second))
        value = round(float(np.mean(distances)), 4)
        return Quality("style_consistency", value, "skimage photos", images_sha256(photos), 2)


class StyleArbitraryProfile(Profile):
    """Arbitrary style: an exported version folder of `atelier train style-arbitrary`."""

    contract = STYLE_ARBITRARY
    settings = ("work_side", "mirror", "palette")

    def example_inputs(self, metadata: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        from training.style.export import arbitrary_inputs

        return arbitrary_inputs()

    def build_eager(self, metadata: dict[str, Any]) -> nn.Module:
        from training.style.export import build_arbitrary

        return build_arbitrary(metadata)

    def raw_outputs(self, eager: nn.Module, inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
        from training.style.model import to_network

        with torch.inference_mode():
            vector = eager.style_vector(torch.from_numpy(inputs["style_image"]))
            return [vector, eager.net(to_network(torch.from_numpy(inputs["image"])), vector)]

    def quality(
        self, model: torch.jit.ScriptModule, metadata: dict, options: ValidationOptions
    ) -> Quality:
        from training.metrics.style import style_distance, style_vector

        photos = skimage_images(HELD_OUT_PHOTOS)
        styles = skimage_images(EVAL_STYLE_IMAGES)
        distances = []
        for style in styles:
            inputs = {
                "image": np.stack(photos),
                "style_image": np.stack([style] * len(photos)),
                "strength": np.ones((len(photos), 1), np.float32),
            }
            reference = style_vector(style)
            for output in run_module(model, STYLE_ARBITRARY, inputs, options.autocast)["image"]:
                distances.append(style_distance(output, reference))
        value = round(float(np.mean(distances)), 4)
        data = images_sha256(photos + styles)
        return Quality("style_distance", value, "skimage photos", data, len(distances))


# Bach's chorales (music21's corpus), mean and sd per piece: training/metrics/music.py.
BACH_STATS = {
    "pc_entropy": (2.95, 0.12),
    "in_key": (0.955, 0.024),
    "notes_per_beat": (4.37, 0.60),
    "pitch_range": (35.0, 3.0),
}
# C, G, D, F major; A, E, B, F# minor: eight 8-bar pieces at /compose's default temperature
MUSIC_QUALITY_KEYS = (0, 21, 7, 16, 2, 23, 5, 18)
MUSIC_QUALITY_BARS = 8


class MusicProfile(Profile):
    """The four-voice sampler: an exported version folder of `atelier train music`."""

    contract = MUSIC
    latency_budget_ms = 20000.0  # a batch of 4 two-bar pieces, many sampling passes

    def missing_metadata(self, metadata: dict[str, Any]) -> list[str]:
        """Music exports record the corpus by name (`data`) and their command(s)."""
        missing = [] if metadata.get("data") else ["data"]
        if not (metadata.get("training_command") or metadata.get("training_commands")):
            missing.append("training_command")
        return missing

    def example_inputs(self, metadata: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        from training.music.export import music_inputs

        return music_inputs()

    def build_eager(self, metadata: dict[str, Any]) -> nn.Module:
        from training.music.export import build_composer

        return build_composer(metadata)

    def raw_outputs(self, eager: nn.Module, inputs: dict[str, np.ndarray]) -> list[torch.Tensor]:
        return []  # integer grids and events: the contract step checks their ranges

    def quality(
        self, model: torch.jit.ScriptModule, metadata: dict, options: ValidationOptions
    ) -> Quality:
        from deploy.contracts import DEFAULT_TEMPERATURE, FREE, STEPS_PER_BAR
        from training.metrics.music import piece_metrics

        count = len(MUSIC_QUALITY_KEYS)
        inputs = {
            "given": np.full((count, MUSIC_QUALITY_BARS * STEPS_PER_BAR, 4), FREE, np.int64),
            "style": np.zeros((count, 1), np.int64),
            "key": np.array(MUSIC_QUALITY_KEYS, np.int64)[:, None],
            "seed": np.arange(1, count + 1, dtype=np.int64)[:, None],
            "temperature": np.full((count, 1), DEFAULT_TEMPERATURE, np.float32),
            "top_k": np.zeros((count, 1), np.int64),
        }
        grids = run_module(model, MUSIC, inputs, options.autocast)["grid"]
        rows = [piece_metrics(g, k) for g, k in zip(grids, MUSIC_QUALITY_KEYS, strict=True)]
        value = sum(
            abs(np.mean([row[name] for row in rows]) - mean) / sd
            for name, (mean, sd) in BACH_STATS.items()
        )
        test = images_sha256([inputs[name] for name in sorted(inputs)])
        return Quality("bach_z_sum", round(float(value), 3), "composed pieces", test, count)


PROFILES: dict[str, Profile] = {
    "gan": GanProfile(),
    "style": StyleProfile(),
    "style_arbitrary": StyleArbitraryProfile(),
    "music": MusicProfile(),
}


def profile_for(model: str) -> Profile:
    if model not in PROFILES:
        raise DeployError(f"publishing supports {', '.join(PROFILES)} so far, not {model}")
    return PROFILES[model]


def copy_version(source: Path, staging: Path) -> None:
    """Copy an exported version folder's model.pt and metadata.json."""
    for name in (MODEL_FILE, METADATA_FILE):
        if not (source / name).is_file():
            raise ValidationError(
                "metadata" if name == METADATA_FILE else "load", f"{source} has no {name}"
            )
        shutil.copy2(source / name, staging / name)


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive (it holds code/), as opposed to a pickled checkpoint."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def validate(
    profile: Profile,
    staging: Path,
    live: Version | None,
    options: ValidationOptions,
    progress: Progress = print,
) -> dict[str, Any]:
    """Run every check on the staged folder; return the measurements, raise on failure."""
    contract = profile.contract
    try:
        model = torch.jit.load(str(staging / MODEL_FILE), map_location="cpu").eval()
    except Exception as error:
        message = f"the TorchScript file does not load: {first_line(error)}"
        raise ValidationError("load", message) from error
    progress("ok   load: TorchScript loads")
    metadata = read_metadata(profile, staging)
    progress("ok   metadata: how the version was made is recorded")

    inputs = profile.example_inputs(metadata)
    outputs = run(model, contract, inputs, "contract", options.autocast)
    for spec in contract.outputs:
        try:
            spec.check(outputs[spec.name])
        except ValueError as error:
            raise ValidationError("contract", str(error)) from error
    progress(f"ok   contract: {', '.join(s.name for s in contract.outputs)} fit {contract.name}")

    check_finite(model, profile, staging, inputs)
    progress("ok   finite: no NaN or Inf in weights or outputs")

    scripted = run(model, contract, inputs, "eager") if options.autocast else outputs
    eager_out = run(profile.eager(staging), contract, inputs, "eager")
    for spec in contract.outputs:
        if not np.array_equal(eager_out[spec.name], scripted[spec.name]):
            message = f"{spec.name}: TorchScript output differs from eager"
            raise ValidationError("eager", message)
    progress("ok   eager: TorchScript output equals eager output")

    check_determinism(model, contract, inputs, outputs, options.autocast)
    progress("ok   determinism: repeated and single-item runs give the same outputs")

    budget_ms = options.latency_budget_ms or profile.latency_budget_ms
    latency_ms = measure_latency(model, contract, inputs, options.autocast)
    if latency_ms > budget_ms:
        raise ValidationError(
            "latency",
            f"a batch of {contract.max_batch_size} takes {latency_ms:.0f} ms, "
            f"over the budget of {budget_ms:g} ms",
        )
    size, precision = contract.max_batch_size, precision_name(options.autocast)
    progress(f"ok   latency: {latency_ms:.0f} ms per batch of {size} in {precision}")

    quality = compare_quality(profile, model, metadata, live, options, progress)
    return {
        "precision": precision_name(options.autocast),
        "latency_ms_batch": round(latency_ms, 1),
        "latency_budget_ms": budget_ms,
        "quality": quality,
        "checks": [
            "load",
            "metadata",
            "contract",
            "finite",
            "eager",
            "determinism",
            "latency",
            "quality",
        ],
    }


def read_metadata(profile: Profile, staging: Path) -> dict[str, Any]:
    try:
        metadata = json.loads((staging / METADATA_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValidationError("metadata", f"metadata.json unreadable: {error}") from error
    missing = profile.missing_metadata(metadata)
    if missing:
        raise ValidationError("metadata", f"metadata.json lacks {', '.join(missing)}")
    return metadata


def run(
    model: nn.Module,
    contract: ModelContract,
    inputs: dict,
    step: str,
    autocast: torch.dtype | None = None,
) -> dict:
    try:
        return run_module(model, contract, inputs, autocast)
    except Exception as error:
        message = f"the model failed on example inputs: {first_line(error)}"
        raise ValidationError(step, message) from error


def check_finite(
    model: torch.jit.ScriptModule, profile: Profile, staging: Path, inputs: dict
) -> None:
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValidationError("finite", f"weight {name} contains NaN or Inf")
    for tensor in profile.raw_outputs(profile.eager(staging), inputs):
        if not torch.isfinite(tensor).all():
            raise ValidationError("finite", "the model's output contains NaN or Inf")


def check_determinism(
    model: nn.Module,
    contract: ModelContract,
    inputs: dict,
    outputs: dict,
    autocast: torch.dtype | None = None,
) -> None:
    again = run_module(model, contract, inputs, autocast)
    first = run_module(model, contract, {k: v[:1] for k, v in inputs.items()}, autocast)
    for spec in contract.outputs:
        if not np.array_equal(again[spec.name], outputs[spec.name]):
            raise ValidationError("determinism", f"{spec.name} differs between two runs")
        if not np.array_equal(first[spec.name][0], outputs[spec.name][0]):
            raise ValidationError("determinism", f"{spec.name} depends on the rest of the batch")


def measure_latency(
    model: nn.Module,
    contract: ModelContract,
    inputs: dict,
    autocast: torch.dtype | None = None,
    runs: int = 3,
) -> float:
    """Median milliseconds of one full batch (example inputs tiled), after a warm-up run."""
    size = contract.max_batch_size
    batch = {k: np.resize(v, (size, *v.shape[1:])) for k, v in inputs.items()}
    run_module(model, contract, batch, autocast)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run_module(model, contract, batch, autocast)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def compare_quality(
    profile: Profile,
    model: torch.jit.ScriptModule,
    metadata: dict,
    live: Version | None,
    options: ValidationOptions,
    progress: Progress,
) -> dict[str, Any]:
    """Measure the candidate and the live version on the same test; refuse if worse."""
    precision = precision_name(options.autocast)
    candidate = replace(profile.quality(model, metadata, options), precision=precision)
    record: dict[str, Any] = {"candidate": asdict(candidate), "margin": options.margin}
    if live is None:
        progress(f"ok   quality: {candidate.metric} {candidate.value} (no live version)")
        return record
    known = live.metadata.get("publish", {}).get("validation", {}).get("quality", {})
    if candidate.same_test(known.get("candidate", {})):
        baseline = Quality(**known["candidate"])  # measured when the live version was published
    else:
        live_model = torch.jit.load(str(live.path / MODEL_FILE), map_location="cpu").eval()
        baseline = replace(profile.quality(live_model, metadata, options), precision=precision)
    record["live"] = {"version": live.number, **asdict(baseline)}
    limit = baseline.value * (1 + options.margin)
    text = (
        f"{candidate.metric} {candidate.value} vs live v{live.number} {baseline.value} "
        f"(limit {limit:.3f}, {candidate.images} images of {candidate.data}, {precision})"
    )
    if candidate.value > limit:
        if not options.allow_worse:
            raise ValidationError("quality", f"{text}; --allow-worse publishes it anyway")
        record["overridden"] = True
        progress(f"WARN quality: {text}; published anyway (--allow-worse)")
    else:
        progress(f"ok   quality: {text}")
    return record


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(error).__name__
