"""The image GAN: DCGAN-style generator and discriminator, DiffAugment, EMA, and the
wrapper that Triton serves.

`Generator` maps latent vectors to images in [-1, 1]; `Discriminator` maps images to
logits (optionally spectrally normalised). `diff_augment` is DiffAugment (Zhao et al.
2020), applied to real and fake images alike on the discriminator's side. `ServedGenerator`
wraps a generator with the pre- and post-processing of the `gan` contract
(deploy/contracts.py), so that the exported TorchScript file takes latents and a
truncation and returns uint8 RGB images.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class GeneratorConfig:
    latent_dim: int = 128
    width: int = 32  # channels of the last hidden layer (DCGAN's ngf)
    image_size: int = 64


class Generator(nn.Module):
    """DCGAN generator (Radford et al. 2016): 1x1 latent -> image_size² RGB in [-1, 1]."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        steps = {32: 3, 64: 4, 128: 5}[config.image_size]
        channels = [config.width * 2 ** (steps - 1 - i) for i in range(steps)]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.latent_dim, channels[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, nn.ConvTranspose2d | nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass
class DiscriminatorConfig:
    width: int = 32  # channels of the first layer (DCGAN's ndf)
    image_size: int = 64
    spectral_norm: bool = False  # spectral norm on every convolution instead of batch norm


class Discriminator(nn.Module):
    """DCGAN discriminator: image_size² RGB -> one logit per image."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        steps = int(math.log2(config.image_size)) - 2  # stride-2 convolutions down to 4x4
        channels = [config.width * 2**i for i in range(steps)]
        norm = spectral_norm if config.spectral_norm else (lambda layer: layer)
        layers: list[nn.Module] = [norm(nn.Conv2d(3, channels[0], 4, 2, 1)), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            layers.append(norm(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=config.spectral_norm)))
            if not config.spectral_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(norm(nn.Conv2d(channels[-1], 1, 4, 1, 0)))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).flatten()


def diff_augment(images: torch.Tensor, policy: str, rng: torch.Generator) -> torch.Tensor:
    """DiffAugment: differentiable colour/translation/cutout, e.g. policy "color,translation"."""
    for name in filter(None, policy.split(",")):
        images = AUGMENTATIONS[name](images, rng)
    return images


def rand_color(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation and contrast per image."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, generator=rng, device=x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, generator=rng, device=x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, generator=rng, device=x.device) + 0.5) + mean


def rand_translation(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to 1/8 of its size, filling with zeros."""
    n, _, h, w = x.shape
    shift = int(h * ratio + 0.5)
    dy = torch.randint(-shift, shift + 1, (n, 1, 1), generator=rng, device=x.device)
    dx = torch.randint(-shift, shift + 1, (n, 1, 1), generator=rng, device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device)[:, None, None]
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def rand_cutout(x: torch.Tensor, rng: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of half the image size in each image."""
    n, _, h, w = x.shape
    size = int(h * ratio + 0.5)
    y0 = torch.randint(0, h + (1 - size % 2), (n, 1, 1), generator=rng, device=x.device)
    x0 = torch.randint(0, w + (1 - size % 2), (n, 1, 1), generator=rng, device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - y0 + size // 2
    cols = torch.arange(w, device=x.device)[None, None, :] - x0 + size // 2
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTATIONS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    for ema_param, param in zip(ema.parameters(), model.parameters(), strict=True):
        ema_param.lerp_(param, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


@torch.no_grad()
def recalibrate_batch_norm(generator: nn.Module, latents: torch.Tensor, batch: int = 64) -> None:
    """Re-estimate batch-norm statistics for `generator`'s own weights (e.g. EMA weights).

    Running averages collected during training belong to the trained weights, not the
    averaged ones; a pass over fixed latents with cumulative averaging fixes that.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    generator.train()
    for chunk in latents.split(batch):
        generator(chunk)
    for norm in norms:
        norm.momentum = 0.1
    generator.eval()


class ServedGenerator(nn.Module):
    """What Triton serves: (z [B, D] float32, truncation [B, 1] float32) -> uint8 [B, H, W, 3]."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator.eval()

    def forward(self, z: torch.Tensor, truncation: torch.Tensor) -> torch.Tensor:
        if bool((truncation < 0).any()) or bool((truncation > 2).any()):
            raise ValueError("truncation must be between 0 and 2")
        images = self.generator(z * truncation)
        pixels = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round()
        return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def load_eager_generator(version_dir: Path) -> ServedGenerator:
    """The eager twin of an exported version: config from metadata.json, weights from model.pt."""
    metadata = json.loads((Path(version_dir) / "metadata.json").read_text())
    served = ServedGenerator(Generator(GeneratorConfig(**metadata["config"])))
    scripted = torch.jit.load(str(Path(version_dir) / "model.pt"), map_location="cpu")
    served.load_state_dict(scripted.state_dict())
    return served.eval()
