"""Atelier's style networks and the wrappers that Triton serves.

`StyleNet` is Johnson et al.'s (2016) feed-forward transformer, narrowed, with
conditional instance normalisation (Dumoulin et al. 2017): every norm layer's scale and
shift are linear in a conditioning vector. For named styles that vector is the style
weights (one row of scales and shifts per style, so weights blend styles); for arbitrary
styles it is a 100-d style vector from `StylePredictorNet` (as in Ghiasi et al. 2017).

`ServedStyle` and `ServedArbitrary` hold the pre- and post-processing of the `style` and
`style_arbitrary` contracts (deploy/contracts.py): uint8 HWC in and out, any size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

STYLE_DIM = 100  # the arbitrary style vector, as Magenta's predictor makes it
PREDICT_SIZE = 256  # style images are seen at 256², center-cropped
MIN_SIDE = 16  # smaller inputs are padded (edge pixels repeated) up to this
WORK_SIDE = 512  # new exports: larger images are styled at this longest side, resized back
LAYERS_PER_STAGE = 7  # StylePredictorNet's layers in each stride-2 stage


@dataclass
class StyleNetConfig:
    cond_dim: int = 12  # named styles: the number of styles; arbitrary: STYLE_DIM
    half: int = 24  # channels at half resolution
    quarter: int = 32  # channels of the residual blocks at quarter resolution
    blocks: int = 5  # residual blocks
    arbitrary: bool = False  # conditioned on a style vector instead of style weights
    detail: bool = False  # a full-resolution path from the input image to the output (Detail)


class CondInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are linear maps of the conditioning vector."""

    def __init__(self, channels: int, cond_dim: int, arbitrary: bool) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.scale = nn.Linear(cond_dim, channels, bias=arbitrary)
        self.shift = nn.Linear(cond_dim, channels, bias=arbitrary)
        if arbitrary:  # start near the identity: scale 1 + small, shift small
            nn.init.normal_(self.scale.weight, 0.0, 0.01)
            nn.init.ones_(self.scale.bias)
            nn.init.normal_(self.shift.weight, 0.0, 0.01)
            nn.init.zeros_(self.shift.bias)
        else:  # one column per style: every style starts as scale 1, shift 0
            nn.init.ones_(self.scale.weight)
            nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = self.scale(cond)[:, :, None, None]
        shift = self.shift(cond)[:, :, None, None]
        return self.norm(x) * scale + shift


class UpConv(nn.Module):
    """Nearest 2x upsampling then a 3x3 convolution (resize-convolution, Odena et al. 2016),
    computed without the upsampled tensor: each of the four output phases is a 3x3 kernel
    at the low resolution (sums of the original kernel's rows and columns), run as one
    convolution with 4x the channels and a pixel shuffle. Exactly equal, 2-3x faster."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        conv = nn.Conv2d(c_in, c_out, 3)  # for PyTorch's default initialisation
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = phase_kernels(self.weight), self.bias.repeat_interleave(4)
        return F.pixel_shuffle(F.conv2d(x, weight, bias, padding=1), 2)


def phase_kernels(w: torch.Tensor) -> torch.Tensor:
    """[O, I, 3, 3] -> [4 O, I, 3, 3]: output pixel (2i + p, 2j + q) of upsample-then-conv
    reads low-res rows i-1, i (p = 0: W0, W1 + W2) or i, i+1 (p = 1: W0 + W1, W2)."""
    zero = torch.zeros_like(w[:, :, :1])
    rows = [
        torch.cat([w[:, :, :1], w[:, :, 1:2] + w[:, :, 2:], zero], 2),
        torch.cat([zero, w[:, :, :1] + w[:, :, 1:2], w[:, :, 2:]], 2),
    ]
    phases: list[torch.Tensor] = []
    for r in rows:
        z = torch.zeros_like(r[..., :1])
        phases.append(torch.cat([r[..., :1], r[..., 1:2] + r[..., 2:], z], 3))
        phases.append(torch.cat([z, r[..., :1] + r[..., 1:2], r[..., 2:]], 3))
    return torch.stack(phases, 1).reshape(4 * w.shape[0], w.shape[1], 3, 3)


class Detail(nn.Module):
    """The input image's own pixels into the output logits at full resolution, which the
    rest of StyleNet never sees: a 3x3 convolution of the image, scaled per channel by a
    linear map of the conditioning vector (how much of the photo's detail a style keeps).
    It starts at zero, so a net given it computes the same images until trained."""

    def __init__(self, cond_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, 1, 1)
        self.gain = nn.Linear(cond_dim, 3)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        nn.init.zeros_(self.gain.weight)
        nn.init.ones_(self.gain.bias)

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.conv(image) * self.gain(cond)[:, :, None, None]


class ConvBlock(nn.Module):
    """3x3 convolution (or UpConv), conditional instance norm, ReLU."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, config: StyleNetConfig, up: bool = False
    ) -> None:
        super().__init__()
        self.conv = UpConv(c_in, c_out) if up else nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.norm = CondInstanceNorm(c_out, config.cond_dim, config.arbitrary)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x), cond))


class Residual(nn.Module):
    """Two 3x3 conditional conv layers with a skip connection (no ReLU after the second)."""

    def __init__(self, channels: int, config: StyleNetConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.norm1 = CondInstanceNorm(channels, config.cond_dim, config.arbitrary)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.norm2 = CondInstanceNorm(channels, config.cond_dim, config.arbitrary)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x), cond))
        return x + self.norm2(self.conv2(y), cond)


class StyleNet(nn.Module):
    """Images [B, 3, H, W] in [0, 1] (H, W multiples of 4) and conditioning [B, cond_dim]
    -> stylised images [B, 3, H, W] in [0, 1].

    Johnson et al.'s layout without its wide full-resolution layers, which cost most of
    the time on a CPU: the image enters as 2x2 pixel blocks (pixel unshuffle, 12 channels
    at half resolution), goes down once more to the residual blocks at quarter
    resolution, and up twice by resize-convolution (UpConv), the second time straight to
    RGB; with `detail`, the image's own edges join at full resolution (Detail).
    Channels-last memory makes oneDNN's convolutions several times faster on a CPU."""

    def __init__(self, config: StyleNetConfig) -> None:
        super().__init__()
        self.config = config
        half, quarter = config.half, config.quarter
        self.enter = ConvBlock(12, half, 1, config)
        self.down = ConvBlock(half, quarter, 2, config)
        self.res = nn.ModuleList([Residual(quarter, config) for _ in range(config.blocks)])
        self.up = ConvBlock(quarter, half, 1, config, up=True)
        self.out = UpConv(half, 3)
        self.detail = Detail(config.cond_dim) if config.detail else None

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        logits = self.coarse(image, cond)
        if self.detail is not None:
            logits = logits + self.detail(image, cond)
        return torch.sigmoid(logits).contiguous()

    def coarse(self, image: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The output's logits from the half- and quarter-resolution layers (no Detail)."""
        x = F.pixel_unshuffle(image, 2).contiguous(memory_format=torch.channels_last)
        x = self.down(self.enter(x, cond), cond)
        for block in self.res:
            x = block(x, cond)
        return self.out(self.up(x, cond)).contiguous()

    def stylise(self, image: torch.Tensor, cond: torch.Tensor, work_side: int) -> torch.Tensor:
        """The output [B, 3, H', W'] for uint8 images [B, H, W, 3] (H' >= H, W' >= W:
        to_pixels crops). An image whose longest side is over `work_side` (0: no limit) is
        styled at that side and the output resized back (bicubic): the texture keeps its
        size relative to the picture at any resolution, in a fraction of the time. With
        Detail, the logits are resized back and Detail adds the photo's edges at full size."""
        x = image.permute(0, 3, 1, 2).float() / 255.0
        h, w = x.shape[-2], x.shape[-1]
        if work_side <= 0 or max(h, w) <= work_side:
            return self(pad_for_network(x), cond)
        small = shrink_to(x, work_side)
        small_h, small_w = small.shape[-2], small.shape[-1]
        if self.detail is None:
            styled = self(pad_for_network(small), cond)[:, :, :small_h, :small_w]
            return F.interpolate(styled, size=[h, w], mode="bicubic").clamp(0.0, 1.0)
        logits = self.coarse(pad_for_network(small), cond)[:, :, :small_h, :small_w]
        logits = F.interpolate(logits, size=[h, w], mode="bicubic")
        return torch.sigmoid(logits + self.detail(x, cond))


@dataclass
class PredictorConfig:
    widths: tuple[int, ...] = (24, 32, 48, 64, 96, 128)  # one stride-2 stage each
    style_dim: int = STYLE_DIM
    pooled_stages: int = 1  # the last N stages' pooled features feed the head
    pooled_std: bool = False  # the head also sees each pooled channel's spatial std
    gram_stages: int = 0  # the first N stages' channel Gram matrices also feed the head

    @classmethod
    def from_json(cls, config: dict) -> PredictorConfig:
        """The config a version's metadata records (`predictor_config`)."""
        return cls(**{**config, "widths": tuple(config["widths"])})  # a list in JSON

    @property
    def pooled_parts(self) -> int:
        """Statistics pooled per channel: mean and max, and std with `pooled_std`."""
        return 3 if self.pooled_std else 2

    def head_blocks(self) -> list[tuple[int, int]]:
        """(channels, first column) of each pooled stage's block of head inputs, the last
        stage first; a block holds the mean-pooled channels, then the max-pooled ones, then
        (with `pooled_std`) their standard deviations."""
        blocks, column = [], 0
        for channels in reversed(self.widths[len(self.widths) - self.pooled_stages :]):
            blocks.append((channels, column))
            column += self.pooled_parts * channels
        return blocks

    def pooled_inputs(self) -> int:
        """How many head inputs the pooled blocks take (they come first)."""
        return self.pooled_parts * sum(self.widths[-self.pooled_stages :])

    def gram_blocks(self) -> list[tuple[int, int]]:
        """(channels, first column) of each Gram stage's block of head inputs, the first
        stage first, after the pooled blocks; a block holds the upper triangle (diagonal
        included, row by row) of the stage's channel Gram matrix."""
        blocks, column = [], self.pooled_inputs()
        for channels in self.widths[: self.gram_stages]:
            blocks.append((channels, column))
            column += channels * (channels + 1) // 2
        return blocks

    def head_inputs(self) -> int:
        """How many features the head sees: pooled statistics, then Gram entries."""
        return self.pooled_inputs() + sum(c * (c + 1) // 2 for c in self.widths[: self.gram_stages])


class StylePredictorNet(nn.Module):
    """A small student of Magenta's style predictor: images [B, 3, H, W] in [0, 1]
    -> style vectors [B, 100]. Each stage: a stride-2 3x3 conv, then a depthwise-separable
    3x3 conv, batch norm and ReLU6. The last `pooled_stages` stages are mean- and
    max-pooled over space (texture statistics at several scales; with `pooled_std`, their
    standard deviations too) into a linear head; with `gram_stages`, the first stages'
    channel Gram matrices too (Gatys et al. 2015's texture statistics)."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        if not 1 <= config.pooled_stages <= len(config.widths):
            raise ValueError(f"pooled_stages must be 1 to {len(config.widths)}")
        if not 0 <= config.gram_stages <= len(config.widths):
            raise ValueError(f"gram_stages must be 0 to {len(config.widths)}")
        self.config = config
        layers: list[nn.Module] = []
        c_in = 3
        for c in config.widths:
            layers += [
                nn.Conv2d(c_in, c, 3, 2, 1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU6(),
                nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False),
                nn.Conv2d(c, c, 1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU6(),
            ]
            c_in = c
        self.features = nn.Sequential(*layers)
        stages = range(len(config.widths) - config.pooled_stages, len(config.widths))
        self.pooled_after = [(s + 1) * LAYERS_PER_STAGE - 1 for s in stages]  # layer indices
        self.pooled_std = config.pooled_std
        gram_ends = config.gram_stages * LAYERS_PER_STAGE
        self.gram_at = [
            i < gram_ends and (i + 1) % LAYERS_PER_STAGE == 0 for i in range(len(layers))
        ]
        self.head = nn.Linear(config.head_inputs(), config.style_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vector_and_map(images)[0]

    def vector_and_map(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The style vectors [B, 100] and the last stage's feature map [B, C, h, w], each
        stage halving the side (for training hints)."""
        pooled, last_map = self.pooled_and_map(images)
        return self.head(pooled), last_map

    def pooled_and_map(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's inputs [B, D] (PredictorConfig.head_blocks, then gram_blocks) and the
        last stage's map."""
        x = images * 2.0 - 1.0
        pooled: list[torch.Tensor] = []
        grams: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.pooled_after:
                parts = [x.mean(dim=(2, 3)), x.amax(dim=(2, 3))]
                if self.pooled_std:  # (the epsilon keeps a flat channel's gradient finite)
                    parts.append((x.var(dim=(2, 3), unbiased=False) + 1e-6).sqrt())
                pooled.insert(0, torch.cat(parts, dim=1))
            if self.gram_at[i]:  # the end of one of the first `gram_stages` stages
                grams.append(gram_triangle(x))
        return torch.cat(pooled + grams, dim=1), x


def channel_products(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, C]: each pair of channels' product averaged over space (the
    channel Gram matrix; the perceptual loss's `gram` divides it by C too)."""
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[2]


def gram_triangle(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] (ReLU6 outputs, >= 0) -> [B, C(C+1)/2]: the upper triangle of each
    image's `channel_products`, row by row, square rooted: a linear head predicts Magenta's
    vectors better from the roots (held-back vector error 1.000 against 1.009 for the
    products; on the eval styles 1.33 and 1.37)."""
    upper = torch.triu_indices(x.shape[1], x.shape[1], device=x.device)
    products = channel_products(x)[:, upper[0], upper[1]]
    return (products.clamp_min(0.0) + 1e-6).sqrt()  # (the epsilon: a finite gradient)


def square_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Center-crop [B, 3, H, W] to a square and resize it to size² (antialiased bilinear)."""
    h, w = images.shape[-2], images.shape[-1]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = images[:, :, top : top + side, left : left + side]
    return F.interpolate(
        square, size=[size, size], mode="bilinear", align_corners=False, antialias=True
    )


def to_network(image: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H', W'] in [0, 1], padded (pad_for_network)."""
    return pad_for_network(image.permute(0, 3, 1, 2).float() / 255.0)


def shrink_to(images: torch.Tensor, side: int) -> torch.Tensor:
    """[B, C, H, W] resized (antialiased bilinear) to `side` on the longest side, keeping
    the aspect ratio: how a work side styles a large image and style distance sees it."""
    h, w = images.shape[-2], images.shape[-1]
    scale = side / max(h, w)
    size = [max(1, int(round(h * scale))), max(1, int(round(w * scale)))]
    return F.interpolate(images, size=size, mode="bilinear", antialias=True)


def pad_for_network(x: torch.Tensor, min_side: int = MIN_SIDE, multiple: int = 4) -> torch.Tensor:
    """Pad [B, 3, H, W] by repeating the edge pixels to a multiple of 4 and at least
    `min_side` (the caller crops back to H x W)."""
    h, w = x.shape[-2], x.shape[-1]
    pad_h = max(min_side, (h + multiple - 1) // multiple * multiple) - h
    pad_w = max(min_side, (w + multiple - 1) // multiple * multiple) - w
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
    return x


def to_pixels(styled: torch.Tensor, image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Crop the network output to the input's size, blend it with the input by strength
    [B, 1], and return uint8 [B, H, W, 3]."""
    h, w = image.shape[1], image.shape[2]
    styled = styled[:, :, :h, :w].permute(0, 2, 3, 1) * 255.0
    blend = strength.view(-1, 1, 1, 1)
    mixed = blend * styled + (1.0 - blend) * image.float()
    return mixed.round().clamp(0.0, 255.0).to(torch.uint8).contiguous()


def check_strength(strength: torch.Tensor) -> None:
    if bool((strength < 0).any()) or bool((strength > 1).any()):
        raise ValueError("strength must be between 0 and 1")


class OneAtATime(nn.Module):
    """A served model that styles a batch one image at a time (its `stylise_one`): float
    kernels can round differently at another batch size, turning a pixel near x.5 into
    another byte, and a request must give the same bytes whatever Triton batches it with
    (deploy's determinism check)."""

    def each(
        self, image: torch.Tensor, guide: torch.Tensor, strength: torch.Tensor
    ) -> torch.Tensor:
        out = [
            self.stylise_one(image[i : i + 1], guide[i : i + 1], strength[i : i + 1])
            for i in range(image.shape[0])
        ]
        return torch.cat(out)

    def stylise_one(
        self, image: torch.Tensor, guide: torch.Tensor, strength: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError


class ServedStyle(OneAtATime):
    """The `style` model: (image uint8 [B,H,W,3], style_weights [B,N], strength [B,1])
    -> uint8 [B,H,W,3]. `style_names` (a TorchScript attribute, List[str]) lists the N
    styles in weight order; `work_side` is StyleNet.stylise's."""

    def __init__(self, net: StyleNet, style_names: list[str], work_side: int = 0) -> None:
        super().__init__()
        if net.config.cond_dim != len(style_names):
            raise ValueError(
                f"{net.config.cond_dim} styles in the network, {len(style_names)} names"
            )
        self.net = net.eval()
        self.style_names = list(style_names)
        self.work_side = work_side
        self.config_json = _config_json(net.config)

    def forward(
        self, image: torch.Tensor, style_weights: torch.Tensor, strength: torch.Tensor
    ) -> torch.Tensor:
        check_strength(strength)
        if style_weights.shape[1] != len(self.style_names):
            raise ValueError(
                f"style_weights needs {len(self.style_names)} values, "
                f"one per style: {','.join(self.style_names)}"
            )
        if bool((style_weights < 0).any()):
            raise ValueError("style_weights must not be negative")
        total = style_weights.sum(dim=1, keepdim=True)
        if bool((total <= 0).any()):
            raise ValueError("style_weights must not be all zero")
        return self.each(image, style_weights / total, strength)

    def stylise_one(
        self, image: torch.Tensor, weights: torch.Tensor, strength: torch.Tensor
    ) -> torch.Tensor:
        styled = self.net.stylise(image, weights, self.work_side)
        return to_pixels(styled, image, strength)


class ServedArbitrary(OneAtATime):
    """The `style_arbitrary` model: (image uint8 [B,H,W,3], style_image uint8 [B,H2,W2,3],
    strength [B,1]) -> uint8 [B,H,W,3]. `work_side` is StyleNet.stylise's; `mirror`, see
    `style_vector`; `palette` (0-1), see `match_palette`."""

    def __init__(
        self,
        predictor: StylePredictorNet,
        net: StyleNet,
        work_side: int = 0,
        mirror: bool = True,
        palette: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= palette <= 1.0:
            raise ValueError(f"palette must be between 0 and 1, not {palette}")
        self.predictor = predictor.eval()
        self.net = net.eval()
        self.work_side = work_side
        self.mirror = mirror
        self.palette = float(palette)
        self.config_json = _config_json(net.config)

    def forward(
        self, image: torch.Tensor, style_image: torch.Tensor, strength: torch.Tensor
    ) -> torch.Tensor:
        check_strength(strength)
        return self.each(image, style_image, strength)

    def stylise_one(
        self, image: torch.Tensor, style_image: torch.Tensor, strength: torch.Tensor
    ) -> torch.Tensor:
        style = style_square(style_image)
        vector = self.predictor.head(self.style_features(style))
        styled = self.net.stylise(image, vector, self.work_side)
        if self.palette > 0.0:
            styled = match_palette(
                styled[:, :, : image.shape[1], : image.shape[2]], style, self.palette
            )
        return to_pixels(styled, image, strength)

    @torch.jit.export
    def style_vector(self, style_image: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] -> [B, 100]: the predictor's vector of the style image (center
        square at 256²); with `mirror`, the mean of it and of its mirror image's (steadier)."""
        return self.predictor.head(self.style_features(style_square(style_image)))

    def style_features(self, style: torch.Tensor) -> torch.Tensor:
        """The predictor head's inputs for style images [B, 3, 256, 256] in [0, 1]; with
        `mirror`, the mean of theirs and their mirror images' (the head being linear, its
        vector is the mean of both vectors)."""
        if not self.mirror:
            return self.predictor.pooled_and_map(style)[0]
        pooled = self.predictor.pooled_and_map(torch.cat([style, style.flip(-1)]))[0]
        return 0.5 * (pooled[: style.shape[0]] + pooled[style.shape[0] :])


def style_square(style_image: torch.Tensor) -> torch.Tensor:
    """uint8 style images [B, H, W, 3] -> their center squares [B, 3, 256, 256] in [0, 1]:
    what the predictor sees."""
    return square_resize(style_image.permute(0, 3, 1, 2).float() / 255.0, 256)  # PREDICT_SIZE


def match_palette(styled: torch.Tensor, style: torch.Tensor, amount: float) -> torch.Tensor:
    """Move each colour channel of `styled` [B, 3, H, W] in [0, 1] `amount` (0-1) of the way
    to the mean and spread of `style`'s (Reinhard et al. 2001's colour transfer, in RGB): the
    network draws the texture, this brings the style picture's palette."""
    mean = styled.mean(dim=(2, 3), keepdim=True)
    spread = styled.std(dim=(2, 3), unbiased=False, keepdim=True)
    target_mean = style.mean(dim=(2, 3), keepdim=True)
    target_spread = style.std(dim=(2, 3), unbiased=False, keepdim=True)
    matched = (styled - mean) / (spread + 1e-3) * target_spread + target_mean
    return (styled + amount * (matched - styled)).clamp(0.0, 1.0)


def _config_json(config: object) -> str:
    import json

    return json.dumps(asdict(config), sort_keys=True)  # type: ignore[arg-type]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
