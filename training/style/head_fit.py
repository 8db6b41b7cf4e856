"""Fit the style predictor's linear head in closed form: `--fit-head N`.

The head maps pooled features to Magenta's 100-d style vector, and it is linear, so the
best head for the features a predictor has is a ridge regression away. Gradient steps
approach it slowly (and learn it on batch-norm's batch statistics, not the running ones
that serving uses). `fit_head` samples style images as training does, takes their
features as `ServedArbitrary` serves them (eval mode; with the mirror image averaged in),
and solves for the head: the ridge strength is picked on a held-back sixth of the
samples, then the head is solved again on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from training.style.model import PREDICT_SIZE, ServedArbitrary

RIDGE_STRENGTHS = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 1.0)  # on standardised features
HELD_BACK = 6  # one sample in HELD_BACK picks the ridge strength


@dataclass
class HeadFit:
    """What a fit did: its samples, ridge strength, and the mean vector error (L2, on the
    held-back samples) of the head before and of the fitted one."""

    samples: int
    ridge: float
    error_before: float
    error_after: float


@torch.no_grad()
def fit_head(
    served: ServedArbitrary,
    sample_styles,
    magenta: torch.nn.Module,
    count: int,
    rng: np.random.Generator,
    batch: int = 16,
) -> HeadFit:
    """Replace `served.predictor.head` by the ridge regression of Magenta's vectors on the
    served features of `count` style images from `sample_styles(batch, size, rng)`."""
    was_training = served.predictor.training
    served.predictor.eval()
    features, targets = [], []
    for _ in tqdm(range(-(-count // batch)), desc="fitting the head", unit="batch"):
        styles = sample_styles(batch, PREDICT_SIZE, rng)
        targets.append(magenta.vectors(styles))
        features.append(served.style_features(styles))
    x, y = torch.cat(features).double(), torch.cat(targets).double()
    head = served.predictor.head
    held = torch.arange(len(x)) % HELD_BACK == 0
    before = vector_error(x[held] @ head.weight.double().T + head.bias.double(), y[held])
    errors = {}
    for strength in RIDGE_STRENGTHS:
        weight, bias = ridge(x[~held], y[~held], strength)
        errors[strength] = vector_error(x[held] @ weight.T + bias, y[held])
    best = min(errors, key=errors.__getitem__)
    weight, bias = ridge(x, y, best)
    head.weight.copy_(weight.float())
    head.bias.copy_(bias.float())
    served.predictor.train(was_training)
    return HeadFit(len(x), best, before, errors[best])


def ridge(x: torch.Tensor, y: torch.Tensor, strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The linear map y ≈ x @ weight.T + bias minimising squared error plus `strength` times
    the squared weights on standardised x (each column scaled to unit spread)."""
    mean, spread = x.mean(0), x.std(0).clamp_min(1e-4)  # (flat columns get no weight)
    scaled = (x - mean) / spread
    gram = scaled.T @ scaled / len(x) + strength * torch.eye(x.shape[1], dtype=x.dtype)
    coefficients = torch.linalg.solve(gram, scaled.T @ (y - y.mean(0)) / len(x))
    weight = (coefficients / spread[:, None]).T
    return weight, y.mean(0) - mean @ weight.T


def vector_error(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """Mean L2 distance between style vectors (style distance's measure)."""
    return float((predicted - target).norm(dim=1).mean())
