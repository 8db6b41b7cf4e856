"""Style transfer: the teacher conversion, the served models' contracts, the committed
models and their configs, and that training a style from one image moves towards it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deploy.contracts import STYLE, STYLE_ARBITRARY
from deploy.repository import ModelRepository
from training.export import run_module
from training.style.export import arbitrary_inputs, example_image, export_style, style_inputs
from training.style.losses import (
    LossNetworkUnavailable,
    LossWeights,
    StyleLoss,
    StyleTarget,
    loss_network,
)
from training.style.model import (
    PredictorConfig,
    ServedArbitrary,
    ServedStyle,
    StyleNet,
    StyleNetConfig,
    StylePredictorNet,
    UpConv,
    match_palette,
    pad_for_network,
    parameter_count,
)
from training.style.teacher import (
    SHA256,
    MultiStyle26,
    TeacherError,
    check_sha256,
    model_file,
)
from training.style.teacher import predictor as magenta_predictor
from training.style.train import (
    Styles,
    StyleSource,
    add_run_arguments,
    add_styles,
    loss_weights,
    one_hot,
    train_step,
    widen,
)

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
SIZES = [(1, 1), (2, 3), (37, 53), (16, 16), (5, 300)]


def latest(name: str) -> Path:
    return max(
        (p for p in (REPOSITORY / name).iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )


def tiny_net(styles: int = 3, arbitrary: bool = False) -> StyleNet:
    torch.manual_seed(0)
    return StyleNet(
        StyleNetConfig(cond_dim=styles, half=8, quarter=8, blocks=1, arbitrary=arbitrary)
    )


@pytest.fixture(scope="module")
def served_style() -> torch.jit.ScriptModule:
    return torch.jit.script(ServedStyle(tiny_net(), ["a", "b", "c"]))


# The teacher files.


@pytest.mark.parametrize("name", sorted(SHA256))
def test_teacher_files_match_their_pinned_hashes(name: str) -> None:
    assert model_file(name).is_file()


def test_a_changed_teacher_file_fails_clearly(tmp_path: Path) -> None:
    changed = tmp_path / "multistyle26.onnx"
    changed.write_bytes(model_file("multistyle26").read_bytes() + b"\0")
    with pytest.raises(TeacherError, match="sha256 .* expected"):
        check_sha256(changed, SHA256["multistyle26"])
    with pytest.raises(TeacherError, match="missing"):
        check_sha256(tmp_path / "absent.onnx", SHA256["multistyle26"])


def test_converted_teacher_matches_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    image = example_image(36, 44).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    weights = np.zeros(26, np.float32)
    weights[[3, 19]] = 0.5
    session = ort.InferenceSession(str(model_file("multistyle26")))
    expected = session.run(None, {"image": image, "style_weights": weights})[0]
    with torch.no_grad():
        got = MultiStyle26()(torch.from_numpy(image), torch.from_numpy(weights)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("size", [(256, 256), (64, 48)])
def test_style_vectors_from_onnxruntime_match_the_converted_predictor(size) -> None:
    """`vectors` (targets and metrics, in ONNX Runtime) equals the differentiable forward."""
    images = torch.from_numpy(np.stack([example_image(*size, seed=s) for s in (0, 1)]))
    images = images.permute(0, 3, 1, 2).float() / 255.0
    magenta = magenta_predictor()
    fast = magenta.vectors(images)
    assert magenta.session is not None
    with torch.no_grad():
        torch.testing.assert_close(fast, magenta(images)[1], atol=1e-4, rtol=0)


def test_local_vectors_average_to_the_style_vector(monkeypatch) -> None:
    """The teacher's local vectors (the --local-weight hint's targets) form a grid at
    stride 32 whose mean is the style vector, in ONNX Runtime and in the converted graph."""
    from training.style import teacher

    images = torch.from_numpy(np.stack([example_image(256, 192, seed=s) for s in (2, 3)]))
    images = images.permute(0, 3, 1, 2).float() / 255.0
    magenta = magenta_predictor()
    local = magenta.local_vectors(images)
    assert local.shape == (2, 100, 8, 6) and local.std(dim=(2, 3)).mean() > 0.1
    torch.testing.assert_close(local.mean(dim=(2, 3)), magenta.vectors(images), atol=1e-4, rtol=0)
    converted = teacher.StylePredictor()
    monkeypatch.setattr(teacher, "ort_session", lambda model: None)
    torch.testing.assert_close(converted.local_vectors(images), local, atol=1e-4, rtol=0)
    assert converted.session is None


# The served models.


@pytest.mark.parametrize("size", SIZES)
def test_style_returns_the_input_size(served_style: torch.jit.ScriptModule, size) -> None:
    inputs = style_inputs(3, *size)
    out = run_module(served_style, STYLE, inputs)["image"]
    assert out.shape == inputs["image"].shape and out.dtype == np.uint8


def test_strength_zero_returns_the_input(served_style: torch.jit.ScriptModule) -> None:
    inputs = style_inputs(3)
    inputs["strength"][:] = 0.0
    out = run_module(served_style, STYLE, inputs)["image"]
    np.testing.assert_array_equal(out, inputs["image"])


def test_style_weights_blend_linearly() -> None:
    """CIN: a blend's scales and shifts are the weighted mean of the styles' rows."""
    net = tiny_net().eval()
    for parameter in net.parameters():
        parameter.data.normal_()
    x, half = torch.rand(1, 3, 16, 16), torch.tensor([[0.5, 0.5, 0.0]])
    norm = net.enter.norm
    mean = (
        norm.scale(one_hot(torch.tensor([0]), 3)) + norm.scale(one_hot(torch.tensor([1]), 3))
    ) / 2
    torch.testing.assert_close(norm.scale(half), mean)
    assert not torch.allclose(net(x, half), net(x, one_hot(torch.tensor([0]), 3)))


@pytest.mark.parametrize(
    ("weights", "strength", "message"),
    [
        ([1.0, 0.0], 1.0, "needs 3 values"),
        ([0.0, 0.0, 0.0], 1.0, "all zero"),
        ([1, 0, 0], 2.0, "strength"),
    ],
)
def test_style_rejects_bad_inputs(served_style, weights, strength, message) -> None:
    image = torch.zeros(1, 8, 8, 3, dtype=torch.uint8)
    with pytest.raises(torch.jit.Error, match=message):
        served_style(
            image, torch.tensor([weights], dtype=torch.float32), torch.tensor([[strength]])
        )


@pytest.mark.parametrize("palette", [0.0, 0.5])
@pytest.mark.parametrize("size", SIZES)
def test_arbitrary_returns_the_input_size(size, palette: float) -> None:
    predictor = StylePredictorNet(PredictorConfig(widths=(8, 8)))
    net = tiny_net(100, arbitrary=True)
    served = torch.jit.script(ServedArbitrary(predictor, net, palette=palette))
    inputs = arbitrary_inputs(*size)
    out = run_module(served, STYLE_ARBITRARY, inputs)["image"]
    assert out.shape == inputs["image"].shape and out.dtype == np.uint8


def test_palette_moves_the_colours_toward_the_style_image() -> None:
    """Channel means and spreads go `palette` of the way to the style image's (the style's
    center square, as the predictor sees it), before the strength's blend."""
    torch.manual_seed(0)
    predictor, net = StylePredictorNet(PredictorConfig(widths=(8, 8))), tiny_net(100, True)
    inputs = arbitrary_inputs(48, 64)
    inputs["strength"] = np.ones((2, 1), np.float32)
    style = np.zeros((2, 64, 64, 3), np.uint8)
    style[..., 0], style[:, ::2, :, 2] = 200, 90  # red, striped with blue
    inputs["style_image"] = style

    def served(palette: float) -> np.ndarray:
        model = torch.jit.script(ServedArbitrary(predictor, net, palette=palette))
        return run_module(model, STYLE_ARBITRARY, inputs)["image"].astype(np.float64)

    plain, half, full = served(0.0), served(0.5), served(1.0)
    target_mean = style.mean((0, 1, 2))
    np.testing.assert_allclose(full.mean((0, 1, 2)), target_mean, atol=1.5)
    np.testing.assert_allclose(
        half.mean((0, 1, 2)), (plain.mean((0, 1, 2)) + target_mean) / 2, atol=1.5
    )
    styled = torch.randint(0, 2, (1, 3, 20, 30)).float() * torch.tensor([0.2, 0.5, 1.0]).view(
        1, 3, 1, 1
    )
    matched = match_palette(
        styled, torch.from_numpy(style[:1] / 255).permute(0, 3, 1, 2).float(), 1.0
    )
    spread = matched.std(dim=(2, 3), unbiased=False).squeeze(0) * 255
    torch.testing.assert_close(spread, torch.tensor([0.0, 0.0, 45.0]), atol=0.5, rtol=0)
    eager = ServedArbitrary(predictor, net, palette=0.5)  # TorchScript gives eager's bytes
    assert np.array_equal(half, run_module(eager, STYLE_ARBITRARY, inputs)["image"])
    with pytest.raises(ValueError, match="palette must be between 0 and 1"):
        ServedArbitrary(predictor, net, palette=1.5)


def test_arbitrary_style_vector_is_the_same_for_a_mirrored_style_image() -> None:
    """The served predictor averages the style image and its mirror image; one alone is not
    symmetric, so a style image and its mirror give the same vector only through that."""
    torch.manual_seed(0)
    predictor = StylePredictorNet(PredictorConfig(widths=(8, 8)))
    served = torch.jit.script(ServedArbitrary(predictor, tiny_net(100, arbitrary=True)))
    style = torch.randint(0, 256, (2, 40, 56, 3), dtype=torch.uint8)
    mirrored = style.flip(2)
    torch.testing.assert_close(served.style_vector(style), served.style_vector(mirrored))
    square = style[:, :, 8:48].permute(0, 3, 1, 2).float() / 255  # what the predictor sees
    assert not torch.allclose(predictor.eval()(square), predictor(square.flip(-1)))


def first_conv_batches(module: torch.nn.Module) -> list[int]:
    """Record the batch size of every call to `module`'s first convolution."""
    seen: list[int] = []
    conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    return seen


@pytest.mark.parametrize("arbitrary", [False, True])
def test_a_batch_is_styled_one_image_at_a_time(arbitrary: bool) -> None:
    """Float kernels may round differently at another batch size: each image goes through
    the networks alone (the predictor sees it and its mirror), so it gets its bytes alone."""
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 20, 28, 3), dtype=torch.uint8)
    strength = torch.tensor([[1.0], [0.5], [0.8]])
    if arbitrary:
        predictor = StylePredictorNet(PredictorConfig(widths=(8, 8)))
        served = ServedArbitrary(predictor, tiny_net(100, arbitrary=True)).eval()
        second = torch.randint(0, 256, (3, 30, 24, 3), dtype=torch.uint8)
        predicted = first_conv_batches(predictor)
    else:
        served = ServedStyle(tiny_net(3), ["a", "b", "c"]).eval()
        second = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0.2, 0.3, 0.5]])
    styled = first_conv_batches(served.net)
    with torch.no_grad():
        batch = served(image, second, strength)
        alone = [served(image[i : i + 1], second[i : i + 1], strength[i : i + 1]) for i in range(3)]
    assert torch.equal(batch, torch.cat(alone))
    assert styled == [1] * 6
    if arbitrary:
        assert predicted == [2] * 6  # the style image and its mirror


def test_a_wider_predictor_keeps_its_vectors_and_the_transformer(tmp_path: Path) -> None:
    """--init with wider --predictor-widths, more --predictor-pooled-stages,
    --predictor-pooled-std or more --predictor-gram-stages widens the predictor (the same
    vectors to start); other stages, or Gram stages of other widths, start it afresh; the
    transformer is kept either way."""
    from training.style.arbitrary import load_init

    for config, cases in [
        (
            PredictorConfig(widths=(8, 8)),
            [
                ((8, 16), 1, False, 0, True),
                ((12, 16), 1, False, 0, True),
                ((8, 8), 2, False, 0, True),
                ((12, 16), 2, False, 0, True),
                ((8, 8), 1, True, 0, True),
                ((12, 16), 2, True, 0, True),
                ((8, 8), 1, False, 2, True),
                ((12, 16), 2, True, 1, True),
                ((8, 8, 8), 1, False, 0, False),
            ],
        ),
        (
            PredictorConfig(widths=(8, 8), gram_stages=1),
            [((8, 16), 1, False, 2, True), ((12, 8), 1, False, 1, False)],
        ),
    ]:
        old = ServedArbitrary(StylePredictorNet(config), tiny_net(100, True))
        path = tmp_path / "model.pt"
        torch.jit.script(old.eval()).save(str(path))
        styles = torch.rand(2, 3, 32, 32)
        torch.manual_seed(1)
        same = ServedArbitrary(StylePredictorNet(config), tiny_net(100, True))
        load_init(same, path, config)
        for key, value in old.state_dict().items():
            torch.testing.assert_close(same.state_dict()[key], value)
        for widths, pooled, std, grams, kept in cases:
            wider = PredictorConfig(widths, pooled_stages=pooled, pooled_std=std, gram_stages=grams)
            new = ServedArbitrary(StylePredictorNet(wider), tiny_net(100, True))
            for p in new.net.parameters():
                torch.nn.init.zeros_(p)
            load_init(new, path, config)
            for key, value in old.net.state_dict().items():
                torch.testing.assert_close(new.net.state_dict()[key], value)
            assert new.predictor.config.widths == widths
            with torch.no_grad():
                vectors = new.predictor.eval()(styles)
                same_vectors = torch.allclose(vectors, old.predictor(styles), atol=1e-6)
                torch.testing.assert_close(torch.jit.script(new.predictor)(styles), vectors)
            assert same_vectors == kept, (config, wider)
            assert parameter_count(new.predictor) > parameter_count(old.predictor)


def test_a_wider_transformer_computes_the_same_images_to_start(tmp_path: Path) -> None:
    """--init with more --half/--quarter channels, or with --detail, widens the transformer,
    which starts by computing the same images; with fewer, --init's widths are kept."""
    from training.style.arbitrary import load_init

    config = PredictorConfig(widths=(8, 8))
    old = ServedArbitrary(StylePredictorNet(config), tiny_net(100, True))
    path = tmp_path / "model.pt"
    torch.jit.script(old.eval()).save(str(path))
    images, cond = torch.rand(2, 3, 32, 32), torch.randn(2, 100)
    for half, quarter, detail, kept in [
        (12, 16, False, (12, 16)),
        (4, 4, False, (8, 8)),
        (8, 8, True, (8, 8)),
    ]:
        net = StyleNet(StyleNetConfig(100, half, quarter, 1, True, detail))
        new = ServedArbitrary(StylePredictorNet(config), net)
        load_init(new, path, config)
        assert (new.net.config.half, new.net.config.quarter) == kept
        assert (new.net.detail is not None) == detail
        with torch.no_grad():
            torch.testing.assert_close(new.net(images, cond), old.net(images, cond))
            scripted = torch.jit.script(new.eval())
            torch.testing.assert_close(scripted.net(images, cond), old.net(images, cond))
        widened = parameter_count(new.net) > parameter_count(old.net)
        assert widened == (kept != (8, 8) or detail)


def test_detail_keeps_the_photos_finest_edges_above_the_work_side() -> None:
    """An image larger than the work side is styled smaller, but Detail adds its edges at
    full size: a 1-pixel checkerboard, which the small image cannot hold, shows in the
    output with Detail and not without it."""
    torch.manual_seed(0)
    plain = StyleNet(StyleNetConfig(100, 8, 8, 1, True)).eval()
    net = StyleNet(StyleNetConfig(100, 8, 8, 1, True, detail=True)).eval()
    net.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        net.detail.conv.weight[:, :, 1, 1] = 4.0 * torch.eye(3)  # each channel, its pixel
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None]) % 2
    image = (64 + 128 * checker)[None, :, :, None].expand(1, 64, 64, 3).to(torch.uint8)
    cond = torch.randn(1, 100)
    sign = 2.0 * checker - 1.0
    with torch.no_grad():
        for model, shows in ((plain, False), (net, True)):
            grey = model.stylise(image, cond, work_side=16)[0].mean(0)
            fine = grey - F.avg_pool2d(grey[None, None], 3, 1, 1, count_include_pad=False)[0, 0]
            assert ((fine * sign).mean() > 0.02) == shows
            scripted = torch.jit.script(model)
            torch.testing.assert_close(
                scripted.stylise(image, cond, 16), model.stylise(image, cond, 16)
            )


def test_detail_learns_the_photos_edges_at_its_own_rate() -> None:
    """Detail starts at zero but gets gradients, in its own optimiser group at
    DETAIL_LR_SCALE x the rate; after one step it is no longer zero."""
    from training.style.train import DETAIL_LR_SCALE, parameter_groups

    torch.manual_seed(0)
    net = StyleNet(StyleNetConfig(100, 8, 8, 1, True, detail=True))
    assert [g["lr"] for g in parameter_groups([net], 1e-3, 3.0)] == [1e-3, 3e-3]
    groups = parameter_groups([net], 1e-3)
    assert [g["lr"] for g in groups] == [1e-3, 1e-3 * DETAIL_LR_SCALE]
    assert groups[1]["params"] == list(net.detail.parameters())
    assert net.detail.conv.weight.abs().sum() == 0
    images, cond = torch.rand(2, 3, 32, 32), torch.randn(2, 100)
    optimizer = torch.optim.Adam(groups)
    F.l1_loss(net(images, cond), images).backward()
    optimizer.step()
    assert net.detail.conv.weight.abs().min() > 0.5 * 1e-3 * DETAIL_LR_SCALE


def test_more_pooled_stages_let_the_head_see_earlier_stages() -> None:
    """With pooled_stages 2, the vectors depend on the head's columns for the stage before
    the last: changing them changes the vectors (with 1 there are none)."""
    torch.manual_seed(0)
    styles = torch.rand(2, 3, 32, 32)
    one = StylePredictorNet(PredictorConfig(widths=(8, 16))).eval()
    two = StylePredictorNet(PredictorConfig(widths=(8, 16), pooled_stages=2)).eval()
    assert one.head.in_features == 2 * 16 and two.head.in_features == 2 * (16 + 8)
    with torch.no_grad():
        before = two(styles)
        two.head.weight[:, 32:] += 1.0  # the stage-1 block, after the last stage's
        assert not torch.allclose(two(styles), before)
    with pytest.raises(ValueError, match="pooled_stages must be 1 to 2"):
        StylePredictorNet(PredictorConfig(widths=(8, 16), pooled_stages=3))


def test_ridge_recovers_a_linear_map_and_shrinks_with_strength() -> None:
    from training.style.head_fit import ridge

    torch.manual_seed(0)
    x = torch.rand(200, 5, dtype=torch.float64) * torch.tensor([1, 10, 0.1, 1, 1])
    x[:, 4] = 0.5  # a flat column gets no weight
    a, b = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    weight, bias = ridge(x, x @ a.T + b, 1e-12)
    torch.testing.assert_close(weight[:, :4], a[:, :4])
    assert weight[:, 4].abs().max() == 0.0
    torch.testing.assert_close(x @ weight.T + bias, x @ a.T + b)
    shrunk, _ = ridge(x, x @ a.T + b, 10.0)  # (strength 1 halves a unit-spread column's)
    assert ((x @ shrunk.T).std(0) < 0.2 * (x @ weight.T).std(0)).all()


def test_fitting_the_head_brings_the_served_vectors_to_the_teachers() -> None:
    """--fit-head: the head solved on sampled style images (with their mirror images, as
    served) predicts Magenta's vectors of unseen ones better than a trained-from-scratch
    head does; the features are untouched."""
    from training.style.head_fit import fit_head, vector_error

    torch.manual_seed(0)
    config = PredictorConfig(widths=(8, 16), pooled_stages=2, pooled_std=True, gram_stages=1)
    predictor = StylePredictorNet(config)
    served = ServedArbitrary(predictor, tiny_net(100, True))
    features = copy.deepcopy(predictor.features.state_dict())
    magenta = magenta_predictor()

    def sample(count: int, size: int, rng: np.random.Generator) -> torch.Tensor:
        """Smooth random pictures: 4x4 colour grids blown up to `size`."""
        grid = torch.from_numpy(rng.random((count, 3, 4, 4))).float()
        return F.interpolate(grid, size=(size, size), mode="bilinear")

    fit = fit_head(served, sample, magenta, 128, np.random.default_rng(0))
    assert fit.samples == 128 and fit.error_after < 0.5 * fit.error_before
    unseen = sample(16, 256, np.random.default_rng(1))
    with torch.no_grad():
        vectors = served.style_vector((unseen * 255).round().byte().permute(0, 2, 3, 1))
    assert vector_error(vectors, magenta.vectors(unseen)) < 0.5 * fit.error_before
    for key, value in predictor.features.state_dict().items():
        assert torch.equal(value, features[key])


@pytest.mark.parametrize("name", ["recolour", "invert", "mosaic"])
def test_style_image_views_stay_images_and_change(name: str) -> None:
    from training.style.arbitrary import VIEWS

    rng = np.random.default_rng(0)
    image = torch.rand(1, 3, 30, 34)
    outputs = [VIEWS[name](image, rng) for _ in range(4)]
    for out in outputs:
        assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    assert all((out - image).abs().mean() > 0.01 for out in outputs)


def test_mosaic_repeats_a_shrunken_image() -> None:
    from training.style.arbitrary import mosaic

    out = mosaic(torch.rand(1, 3, 32, 32), np.random.default_rng(0))
    assert any(
        torch.equal(out, out[..., : 32 // k, : 32 // k].repeat(1, 1, k, k)) for k in (2, 4, 8)
    )


def test_large_images_are_styled_at_the_work_side_and_resized_back() -> None:
    """Over `work_side`, the network sees the image shrunk to it; the output is resized
    back to the input's size, and TorchScript agrees. At or under it, nothing changes."""
    weights, strength = torch.tensor([[1.0, 0.0, 0.0]]), torch.ones(1, 1)
    full = ServedStyle(tiny_net(), ["a", "b", "c"]).eval()
    capped = ServedStyle(tiny_net(), ["a", "b", "c"], work_side=24).eval()
    small, large = (
        torch.from_numpy(example_image(20, 24)[None]),
        torch.from_numpy(example_image(37, 53)[None]),
    )
    with torch.inference_mode():
        torch.testing.assert_close(capped(small, weights, strength), full(small, weights, strength))
        out = capped(large, weights, strength)
        assert out.shape == large.shape
        assert not torch.equal(out, full(large, weights, strength))
        shrunk = torch.nn.functional.interpolate(
            large.permute(0, 3, 1, 2).float() / 255, size=[17, 24], mode="bilinear", antialias=True
        )
        styled = capped.net(pad_for_network(shrunk), weights)[:, :, :17, :24]
        expected = torch.nn.functional.interpolate(styled, size=[37, 53], mode="bicubic")
        expected = (expected.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        torch.testing.assert_close(out, expected, atol=1, rtol=0)
        scripted = torch.jit.script(capped)
        torch.testing.assert_close(scripted(large, weights, strength), out)


def test_export_checks_parity_and_keeps_the_names(tmp_path: Path) -> None:
    eager = ServedStyle(tiny_net(), ["a", "b", "c"])
    path = export_style(eager, tmp_path / "1", {"styles": []})
    scripted = torch.jit.load(str(path))
    assert list(scripted.style_names) == ["a", "b", "c"]
    inputs = style_inputs(3, 20, 24)
    np.testing.assert_array_equal(
        run_module(scripted, STYLE, inputs)["image"], run_module(eager, STYLE, inputs)["image"]
    )


def test_upconv_equals_upsampling_then_convolution() -> None:
    torch.manual_seed(0)
    up = UpConv(5, 3)
    x = torch.rand(2, 5, 7, 9)
    upsampled = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    expected = torch.nn.functional.conv2d(upsampled, up.weight, up.bias, padding=1)
    torch.testing.assert_close(up(x), expected, atol=1e-5, rtol=1e-5)


def test_adding_styles_keeps_the_old_ones() -> None:
    net = tiny_net().eval()
    bigger = add_styles(net, 2).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        for k in range(3):
            before = net(x, one_hot(torch.tensor([k]), 3))
            torch.testing.assert_close(bigger(x, one_hot(torch.tensor([k]), 5)), before)


def test_widening_keeps_the_styles_and_adds_channels() -> None:
    net = tiny_net().eval()
    wider = widen(net, half=12, quarter=16).eval()
    assert (wider.config.half, wider.config.quarter) == (12, 16)
    assert parameter_count(wider) > parameter_count(net)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for k in range(3):
            cond = one_hot(torch.tensor([k]), 3)
            torch.testing.assert_close(wider(x, cond), net(x, cond))
    assert widen(net, half=4, quarter=4) is net  # never narrower


# Training and the loss networks.


def test_training_from_one_image_moves_towards_it() -> None:
    """A few steps of the real training step lower the new style's style distance."""
    from training.metrics.style import style_distance

    torch.manual_seed(0)
    loss = StyleLoss(loss_network("predictor"), LossWeights())
    source = StyleSource("hubble", "skimage:hubble_deep_field.jpg")
    crops = torch.rand(8, 3, 64, 64) * 0.2 + torch.linspace(0, 0.8, 64).view(1, 1, 1, 64)
    styles = Styles([source], loss, [(c.permute(1, 2, 0) * 255).byte().numpy() for c in crops], 64)
    net = StyleNet(StyleNetConfig(cond_dim=1, half=12, quarter=16, blocks=1))
    probe = torch.from_numpy(example_image(96, 96)).permute(2, 0, 1)[None].float() / 255

    def distance() -> float:
        with torch.no_grad():
            out = (net(probe, torch.ones(1, 1))[0].permute(1, 2, 0) * 255).byte().numpy()
        return style_distance(out, styles.references[0].numpy())

    before = distance()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(25):
        content = crops[torch.tensor([step % 8, (step + 3) % 8])]
        train_step(net, styles, loss, content, torch.zeros(2, dtype=torch.long), optimizer, 0.0)
    after = distance()
    assert after < 0.95 * before, (before, after)


def test_loss_weights_come_from_the_command_line() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_run_arguments(parser, "style")
    assert loss_weights(parser.parse_args([])) == LossWeights()
    args = parser.parse_args(["--content-weight", "0.4", "--laplacian-weight", "0.5"])
    assert loss_weights(args) == LossWeights(content=0.4, laplacian=0.5)


def test_the_laplacian_loss_asks_for_the_photos_edges_not_its_colours() -> None:
    """Zero for the photo itself; small for the photo recoloured (its edges kept), larger
    for it blurred, and 1 (relative to the photo's edges) for a flat image."""
    from training.style.losses import laplacian_loss

    torch.manual_seed(0)
    photo = F.interpolate(torch.rand(1, 3, 16, 16), size=64, mode="bilinear")
    assert laplacian_loss(photo, photo) == 0
    swapped = photo[:, [2, 1, 0]]  # B and R swapped: luminance changes, a little
    blurred = F.avg_pool2d(F.pad(photo, (2, 2, 2, 2), mode="replicate"), 5, 1)
    flat = torch.full_like(photo, 0.5)
    assert laplacian_loss(swapped, photo) < laplacian_loss(blurred, photo)
    assert laplacian_loss(blurred, photo) < laplacian_loss(flat, photo)
    torch.testing.assert_close(laplacian_loss(flat, photo), torch.tensor(1.0))


def test_the_loss_network_sees_larger_outputs_at_the_crop_side() -> None:
    """With `seen_at`, a larger image's features and style vector are those of it resized
    to that side (as style distance sees a large output); smaller images are seen as they
    are. `content_side` draws each step's crop side from --content-sides."""
    import argparse

    from training.style.train import content_side

    torch.manual_seed(0)
    network = loss_network("predictor")
    seen, whole = StyleLoss(network, LossWeights(), seen_at=64), StyleLoss(network, LossWeights())
    big, small = torch.rand(1, 3, 96, 80), torch.rand(1, 3, 64, 48)
    resized = F.interpolate(big, size=[64, 53], mode="bilinear", antialias=True)
    for ours, theirs in zip(seen.features(big)[0], whole.features(resized)[0], strict=True):
        torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(seen.features(small)[1], whole.features(small)[1])
    assert seen(big, big, seen.target_of_outputs(big))["content"] == 0  # both seen alike
    parser = argparse.ArgumentParser()
    add_run_arguments(parser, "style")
    rng = np.random.default_rng(0)
    assert {content_side(parser.parse_args([]), rng) for _ in range(5)} == {256}
    args = parser.parse_args(["--content-sides", "256,384"])
    assert {content_side(args, rng) for _ in range(20)} == {256, 384}


def test_vgg_loss_network_skips_cleanly_without_torchvision_or_weights(tmp_path: Path) -> None:
    with pytest.raises(LossNetworkUnavailable, match="torchvision|weights"):
        loss_network("vgg16", tmp_path / "vgg16.pth")
    with pytest.raises(LossNetworkUnavailable, match="--vgg-weights"):
        loss_network("vgg16")


def test_vgg_loss_network_where_available() -> None:
    """Runs only where torchvision imports and ATELIER_VGG16 names a local weights file."""
    import os

    weights = os.environ.get("ATELIER_VGG16")
    if not weights or not Path(weights).is_file():
        pytest.skip("VGG-16 needs torchvision and ATELIER_VGG16=<local vgg16 weights file>")
    try:
        network = loss_network("vgg16", Path(weights))
    except LossNetworkUnavailable as error:
        pytest.skip(str(error))
    features, vector = network(torch.rand(1, 3, 64, 64))
    assert len(features) == 4 and vector is None


# The committed models.


def config_styles() -> list[str]:
    return ModelRepository(REPOSITORY).parameters("style")["styles"].split(",")


@pytest.mark.parametrize("contract", [STYLE, STYLE_ARBITRARY], ids=lambda c: c.name)
def test_bfloat16_autocast_stays_close_to_float32(contract) -> None:
    """The configs serve the style models under bfloat16 autocast where the CPU has it."""
    model = torch.jit.load(str(latest(contract.name) / "model.pt")).eval()
    if contract is STYLE:
        inputs = style_inputs(len(config_styles()), 160, 224)
    else:
        inputs = arbitrary_inputs(160, 224)
    full = run_module(model, contract, inputs)["image"].astype(np.int16)
    half = run_module(model, contract, inputs, torch.bfloat16)["image"].astype(np.int16)
    difference = np.abs(full - half)
    assert 0 < difference.mean() < 1.5 and difference.max() < 40


def test_committed_style_names_match_the_config() -> None:
    version = latest("style")
    model = torch.jit.load(str(version / "model.pt"))
    assert list(model.style_names) == config_styles()
    for variant in ("configs/gpu.pbtxt",):
        text = (REPOSITORY / "style" / variant).read_text()
        assert f'string_value: "{",".join(config_styles())}"' in text
    metadata = json.loads((version / "metadata.json").read_text())
    assert [s["name"] for s in metadata["styles"]] == config_styles()
    origins = [s["origin"] for s in metadata["styles"]]
    assert len(origins) >= 12
    assert sum(o.startswith("trained-from-image") for o in origins) >= 2
    assert (version / "model.pt").stat().st_size < 20 * 2**20


@pytest.mark.parametrize("name", ["style", "style_arbitrary"])
def test_committed_models_keep_odd_sizes(name: str) -> None:
    version = latest(name)
    model = torch.jit.load(str(version / "model.pt"))
    contract = {"style": STYLE, "style_arbitrary": STYLE_ARBITRARY}[name]
    for size in ((1, 1), (37, 53)):
        if name == "style":
            inputs = style_inputs(len(model.style_names), *size)
        else:
            inputs = arbitrary_inputs(*size)
        out = run_module(model, contract, inputs)["image"]
        assert out.shape == inputs["image"].shape
    assert (version / "model.pt").stat().st_size < 20 * 2**20
    assert json.loads((version / "metadata.json").read_text())["git_commit"]


def test_crops_larger_than_a_photo_scale_its_short_side_up() -> None:
    from training.style.train import random_crops

    small = np.zeros((300, 451, 3), np.uint8)  # skimage's chelsea is this size
    crops = random_crops([small], 2, 512, np.random.default_rng(0))
    assert crops.shape == (2, 3, 512, 512)


def test_named_training_runs_and_exports_its_settings(tmp_path: Path) -> None:
    """A real (tiny) `atelier train style` run: a distilled and an image style; it leaves a
    model version, a checkpoint and a sheet, and the model keeps --work-side."""
    from training.style import train

    out = tmp_path / "run" / "1"
    tiny = "--epochs 1 --steps 1 --batch 2 --size 64 --half 8 --quarter 8 --blocks 1 --threads 1"
    styles = ["--style", "ink=teacher:3", "--style", "coffee=skimage:coffee.png"]
    argv = [*tiny.split(), *styles, "--work-side", "40", "--out", str(out)]
    assert train.main([*argv, "--run-dir", str(out.parent)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["work_side"] == 40 and metadata["steps"] == 1
    model = torch.jit.load(str(out / "model.pt"))
    assert model.work_side == 40 and list(model.style_names) == ["ink", "coffee"]
    assert (out.parent / "checkpoint.pt").is_file() and (out.parent / "styles.png").is_file()
    more = tmp_path / "more" / "1"
    argv = [*tiny.split(), "--init", str(out / "model.pt"), "--out", str(more)]
    assert train.main([*argv, "--run-dir", str(more.parent)]) == 0
    continued = json.loads((more / "metadata.json").read_text())
    assert continued["steps_total"] == 2 and len(continued["training_commands"]) == 2
    assert continued["training_commands"][0] == metadata["training_command"]
    assert "--init" in continued["training_commands"][1]


def test_arbitrary_training_can_train_one_half_alone(tmp_path: Path) -> None:
    """A real (tiny) `atelier train style-arbitrary` run, then --only-transformer and
    --only-predictor runs from it: each changes its own half and leaves the other as is."""
    from PIL import Image

    from training.style import arbitrary

    tiny = "--epochs 1 --steps 2 --batch 2 --size 64 --half 8 --quarter 8 --blocks 1"
    tiny += " --predictor-widths 8,8 --threads 1"

    def train(name: str, *extra: str) -> dict[str, torch.Tensor]:
        out = tmp_path / name / "1"
        argv = [*tiny.split(), "--out", str(out), "--run-dir", str(out.parent), *extra]
        assert arbitrary.main(argv) == 0
        return torch.jit.load(str(out / "model.pt")).state_dict()

    def changed(a: dict, b: dict, prefix: str) -> bool:
        keys = [k for k in a if k.startswith(prefix) and a[k].is_floating_point()]
        return any(not torch.equal(a[k], b[k]) for k in keys)

    first = train("both", "--work-side", "40")
    init = ["--init", str(tmp_path / "both" / "1" / "model.pt")]
    assert json.loads((tmp_path / "both" / "1" / "metadata.json").read_text())["work_side"] == 40
    assert torch.jit.load(init[1]).work_side == 40
    transformer = train("transformer", *init, "--only-transformer", "--content-sides", "64,96")
    assert changed(first, transformer, "net.") and not changed(first, transformer, "predictor.")
    metadata = json.loads((tmp_path / "transformer" / "1" / "metadata.json").read_text())
    assert metadata["content_sides"] == [64, 96]
    views = ["--augment", "1", "--views", "recolour,invert,mosaic", "--arbitrary-restyles", "1"]
    art = tmp_path / "art"
    art.mkdir()
    for colour in ("red", "navy"):
        Image.new("RGB", (300, 300), colour).save(art / f"{colour}.png")
    views += ["--style-dir", str(art)]
    predictor = train("predictor", *init, "--only-predictor", *views)
    assert changed(first, predictor, "predictor.") and not changed(first, predictor, "net.")
    metadata = json.loads((tmp_path / "predictor" / "1" / "metadata.json").read_text())
    assert metadata["style_dirs"] == [str(art)] and metadata["style_dir_images"] == 2
    assert metadata["steps_total"] == 4 and "--work-side 40" in metadata["training_commands"][0]
    assert "--only-predictor" in metadata["training_commands"][1]
    both = train("end-to-end", *init, "--end-to-end")
    assert changed(first, both, "predictor.") and changed(first, both, "net.")
    assert json.loads((tmp_path / "end-to-end" / "1" / "metadata.json").read_text())["end_to_end"]
    adapted = train("adapted", *init, "--only-transformer", "--end-to-end")
    assert changed(first, adapted, "net.") and not changed(first, adapted, "predictor.")
    hinted = train("hinted", *init, "--only-predictor", "--local-weight", "1")
    assert changed(first, hinted, "predictor.") and not changed(first, hinted, "net.")
    assert hinted.keys() == first.keys()  # the hint is trained, not served
    assert json.loads((tmp_path / "hinted" / "1" / "metadata.json").read_text())["local_weight"]
    with pytest.raises(SystemExit):
        train("refused", *init, "--only-transformer", "--local-weight", "1")
    as_served = train("as-served", *init, "--only-predictor", "--as-served")
    assert changed(first, as_served, "predictor.") and not changed(first, as_served, "net.")
    running = [k for k in first if k.startswith("predictor.") and "running_" in k]
    assert running and all(torch.equal(first[k], as_served[k]) for k in running)
    assert json.loads((tmp_path / "as-served" / "1" / "metadata.json").read_text())["as_served"]
    with pytest.raises(SystemExit):
        train("refused", *init, "--as-served", "--local-weight", "1")
    fit = ["--fit-head", "32", "--predictor-pooled-std", "--predictor-gram-stages", "1"]
    fitted = train("fitted", *init, *fit, "--epochs", "0")
    assert changed(first, fitted, "predictor.head") and not changed(first, fitted, "net.")
    assert not changed(first, fitted, "predictor.features")  # the head alone, no steps
    metadata = json.loads((tmp_path / "fitted" / "1" / "metadata.json").read_text())
    assert metadata["head_fit"]["samples"] == 32 and metadata["steps_total"] == 2
    assert metadata["predictor_config"]["pooled_std"]
    assert metadata["predictor_config"]["gram_stages"] == 1
    with pytest.raises(SystemExit):
        train("nothing", *init, "--epochs", "0")


@pytest.fixture(scope="module")
def arbitrary_losses():
    """The real teacher, perceptual loss and tiny students for `transformer_losses`."""
    from training.style.teacher import ArbitraryTransform

    torch.manual_seed(0)
    student, net = StylePredictorNet(PredictorConfig(widths=(8, 8))), tiny_net(100, True)
    transform, loss = ArbitraryTransform(), StyleLoss(loss_network("predictor"), LossWeights())
    styles, content = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    return student, net, transform, loss, styles, content, magenta_predictor().vectors(styles)


def test_end_to_end_training_lets_the_transformer_losses_teach_the_predictor(
    arbitrary_losses,
) -> None:
    """--end-to-end conditions the transformer on the student predictor's vectors, so its
    losses reach the predictor; by default they stop at Magenta's vectors."""
    from training.style.arbitrary import transformer_losses

    student, net, transform, loss, styles, content, vectors = arbitrary_losses

    def predictor_gradient(end_to_end: bool) -> float:
        student.zero_grad(set_to_none=False)
        condition = student(styles) if end_to_end else None
        transformer_losses(net, transform, loss, content, vectors, condition)["total"].backward()
        return sum(float(p.grad.abs().sum()) for p in student.parameters() if p.grad is not None)

    assert predictor_gradient(end_to_end=False) == 0.0
    assert predictor_gradient(end_to_end=True) > 0.0


def test_the_local_hint_teaches_the_predictor_each_region(arbitrary_losses) -> None:
    """--local-weight: the hint's loss reaches the predictor's features, and a few steps on
    it bring the student's local vectors closer to the teacher's."""
    from training.style.arbitrary import LocalHint, predictor_losses

    student, *_, styles, _, vectors = arbitrary_losses
    student = copy.deepcopy(student)  # the fixture's stays as it is for the other tests
    torch.manual_seed(0)
    hint = LocalHint(student.config.widths[-1])
    optimizer = torch.optim.Adam([*student.parameters(), *hint.parameters()], lr=1e-2)
    losses = []
    for _ in range(10):
        predicted, parts, targets = predictor_losses(student, magenta_predictor(), styles, hint)
        optimizer.zero_grad()
        parts["local"].backward()
        assert student.features[0].weight.grad.abs().sum() > 0
        optimizer.step()
        losses.append(float(parts["local"].detach()))
    torch.testing.assert_close(targets, vectors, atol=1e-4, rtol=0)
    assert losses[-1] < 0.8 * losses[0]
    expected = F.mse_loss(predicted, vectors).detach()
    assert float(parts["predict"].detach()) == pytest.approx(float(expected))


def test_as_served_the_predictor_learns_the_vectors_it_serves(arbitrary_losses) -> None:
    """--as-served: the loss is on the vectors `ServedArbitrary` serves (the mirror mean),
    its gradient reaches the features, and batch norm keeps its running statistics."""
    from training.style.arbitrary import predictor_losses

    student, net, *_, styles, _, vectors = arbitrary_losses
    student = copy.deepcopy(student).eval()
    served = ServedArbitrary(student, net, 256, mirror=True)
    norms = [m for m in student.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms
    before = [m.running_mean.clone() for m in norms]
    predicted, parts, targets = predictor_losses(student, magenta_predictor(), styles, None, served)
    parts["predict"].backward()
    mirrored = 0.5 * (student(styles) + student(styles.flip(-1)))
    torch.testing.assert_close(predicted, mirrored, atol=1e-5, rtol=0)
    assert not torch.allclose(predicted, student(styles), atol=1e-4)
    assert student.features[0].weight.grad.abs().sum() > 0
    for norm, mean in zip(norms, before, strict=True):
        torch.testing.assert_close(norm.running_mean, mean, atol=0, rtol=0)
    torch.testing.assert_close(targets, vectors, atol=1e-4, rtol=0)


def test_the_vector_loss_can_aim_at_the_style_image(arbitrary_losses) -> None:
    """--vector-target style changes the style-vector term alone: it aims at the style
    image's vector instead of the teacher output's."""
    from training.style.arbitrary import transformer_losses

    _, net, transform, loss, _, content, vectors = arbitrary_losses

    def parts(vector_target: str) -> dict[str, float]:
        torch.manual_seed(1)  # the same random shift of the loss network's view
        with torch.no_grad():
            found = transformer_losses(net, transform, loss, content, vectors, None, vector_target)
        return {k: float(v) for k, v in found.items()}

    by_output, by_style = parts("output"), parts("style")
    assert by_style["vector"] != pytest.approx(by_output["vector"], rel=1e-3)
    for part in ("style", "content", "tv", "distil"):
        assert by_style[part] == pytest.approx(by_output[part])
    torch.manual_seed(1)
    with torch.no_grad():
        grams = loss.target_of_outputs(transform(content, vectors)).grams
        expected = loss(net(content, vectors), content, StyleTarget(grams, vectors))["vector"]
    assert by_style["vector"] == pytest.approx(float(expected))


def test_emoji_sheets_tile_glyphs_into_style_images() -> None:
    """Each sheet is a side² grid of several glyphs, the same for the same seed."""
    from training.style.arbitrary import emoji_sheets

    glyphs = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 80, 160, 240)])
    sheets = emoji_sheets(glyphs, 3, seed=1, side=60)
    assert len(sheets) == 3 and all(s.shape == (60, 60, 3) for s in sheets)
    assert all(set(np.unique(s)) <= {0, 80, 160, 240} for s in sheets)
    assert all(len(np.unique(s)) > 1 for s in sheets)
    again = emoji_sheets(glyphs, 3, seed=1, side=60)
    assert all(np.array_equal(a, b) for a, b in zip(sheets, again, strict=True))


def test_folder_styles_keep_large_images_and_pick_n_by_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--style-dir DIR[:N]: recursive, small and unreadable files skipped, alpha on white,
    short side at most 512, and N picked the same way for the same seed."""
    from PIL import Image

    from training.style.arbitrary import folder_styles

    monkeypatch.chdir(tmp_path)  # the image cache (.atelier/cache) goes here
    art = tmp_path / "art"
    (art / "sub").mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (300 + i, 700), (40 * i, 0, 0)).save(art / "sub" / f"{i}.png")
    Image.new("RGBA", (256, 256), (0, 0, 255, 0)).save(art / "clear.png")
    Image.new("RGB", (100, 900)).save(art / "small.png")
    (art / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    everything = folder_styles(str(art))
    assert len(everything) == 7 and not any("small" in n or "broken" in n for n in everything)
    assert (everything[str(art / "clear.png")] == 255).all()
    assert everything[str(art / "sub" / "0.png")].shape == (700, 300, 3)  # short side 300
    picked = folder_styles(f"{art}:3", seed=5)
    assert len(picked) == 3 and set(picked) <= set(everything)
    assert list(folder_styles(f"{art}:3", seed=5)) == list(picked)
