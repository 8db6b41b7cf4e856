"""The image generator: a DCGAN-style generator and the wrapper that Triton serves.

`Generator` maps latent vectors to images in [-1, 1]. `ServedGenerator` wraps it with
the pre- and post-processing of the `gan` contract (deploy/contracts.py), so that the
exported TorchScript file takes latents and a truncation and returns uint8 RGB images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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


class ServedGenerator(nn.Module):
    """What Triton serves: (z [B, D] float32, truncation [B, 1] float32) -> uint8 [B, H, W, 3]."""

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        self.generator = generator.eval()

    def forward(self, z: torch.Tensor, truncation: torch.Tensor) -> torch.Tensor:
        if bool((truncation < 0).any()) or bool((truncation > 2).any()):
            raise ValueError("truncation must be between 0 and 2")
        images = self.generator(z * truncation)
        pixels = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round()
        return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous()
