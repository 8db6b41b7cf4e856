"""`/style` and `atelier style`: a picture restyled by Triton's `style` (named, blendable
styles) or `style_arbitrary` (any picture as the style) model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.errors import UserFacingError
from bot.inference import InferenceClient
from bot.media.images import grid
from deploy.contracts import STYLE, STYLE_ARBITRARY


@dataclass(frozen=True)
class StyledImage:
    pixels: np.ndarray
    record: dict[str, Any]


async def style_names(client: InferenceClient) -> list[str]:
    """The named styles of the served model, from its config's `styles` parameter."""
    names = (await client.model_parameters(STYLE.name)).get("styles", "")
    return [name.strip() for name in names.split(",") if name.strip()]


def style_weights(
    names: list[str], style: str, blend_with: str | None = None, blend: float = 0.5
) -> np.ndarray:
    """One-hot weights for `style`, or (1-blend, blend) between `style` and `blend_with`."""
    weights = np.zeros(len(names), np.float32)
    for name in (style, blend_with):
        if name is not None and name not in names:
            raise UserFacingError(f"There is no style called `{name}`. `/styles` shows them all.")
    if not 0.0 <= blend <= 1.0:
        raise UserFacingError("Blend goes from 0 to 1.")
    if blend_with is None or blend_with == style:
        weights[names.index(style)] = 1.0
    else:
        weights[names.index(style)] = 1.0 - blend
        weights[names.index(blend_with)] = blend
    return weights


def check_strength(strength: float) -> None:
    if not 0.0 <= strength <= 1.0:
        raise UserFacingError("Strength goes from 0 to 1.")


async def stylize(
    client: InferenceClient,
    pixels: np.ndarray,
    *,
    style: str,
    strength: float = 1.0,
    blend_with: str | None = None,
    blend: float = 0.5,
) -> StyledImage:
    """Restyle `pixels` (HWC uint8) in a named style, optionally blended with a second."""
    check_strength(strength)
    names = await style_names(client)
    weights = style_weights(names, style, blend_with, blend)
    result = await client.infer(
        STYLE.name,
        {
            "image": pixels[None],
            "style_weights": weights[None],
            "strength": np.array([[strength]], np.float32),
        },
    )
    params: dict[str, Any] = {"style": style, "strength": strength}
    if blend_with is not None:
        params |= {"blend_with": blend_with, "blend": blend}
    record = {"model": STYLE.name, "model_version": result.model_version, "params": params}
    return StyledImage(result.outputs["image"][0], record)


async def stylize_arbitrary(
    client: InferenceClient, pixels: np.ndarray, style_pixels: np.ndarray, *, strength: float = 1.0
) -> StyledImage:
    """Restyle `pixels` after any picture."""
    check_strength(strength)
    result = await client.infer(
        STYLE_ARBITRARY.name,
        {
            "image": pixels[None],
            "style_image": style_pixels[None],
            "strength": np.array([[strength]], np.float32),
        },
    )
    record = {
        "model": STYLE_ARBITRARY.name,
        "model_version": result.model_version,
        "params": {"style": "image", "strength": strength},
    }
    return StyledImage(result.outputs["image"][0], record)


async def style_sheet(client: InferenceClient, pixels: np.ndarray) -> StyledImage:
    """Every named style applied to `pixels`, in a grid of four columns."""
    names = await style_names(client)
    styled = [await stylize(client, pixels, style=name) for name in names]
    version = styled[0].record["model_version"] if styled else ""
    record = {"model": STYLE.name, "model_version": version, "params": {"sheet": names}}
    return StyledImage(grid([s.pixels for s in styled], columns=4), record)
