"""Errors whose message is written for the user, and the one place that reports errors."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

log = logging.getLogger(__name__)

GENERIC = "Something went wrong on our side (job `{job}`). It was logged; please try again."


class UserFacingError(Exception):
    """An error whose message can be shown to the user as it is."""


def job_id_of(interaction: discord.Interaction) -> str:
    """The job id the command tree gave this interaction."""
    return interaction.extras.get("job_id", "-")


def user_message(error: Exception, job: str) -> str:
    """What the user is told about `error`: never a traceback."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, UserFacingError):
        return f"{error} (job `{job}`)"
    if isinstance(error, app_commands.TransformerError):
        return f"That value doesn't fit the option: {error.value!r}. (job `{job}`)"
    if isinstance(error, app_commands.CheckFailure):
        return f"You can't use this command here. (job `{job}`)"
    return GENERIC.format(job=job)


async def report_error(interaction: discord.Interaction, error: Exception) -> None:
    """Log `error` with the job id and tell the user in an ephemeral message."""
    job = job_id_of(interaction)
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, UserFacingError | app_commands.AppCommandError):
        log.warning("job %s failed: %s %s", job, cause, getattr(cause, "detail", ""))
    else:
        log.error("job %s failed", job, exc_info=cause)
    await send_ephemeral(interaction, user_message(error, job))


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer ephemerally whether or not the interaction was already deferred."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        # A deferred public "thinking…" message can't turn ephemeral: remove it, then follow up.
        await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.exception("job %s: could not tell the user", job_id_of(interaction))
