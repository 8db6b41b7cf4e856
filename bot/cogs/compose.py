"""`/compose` (a new piece in a style) and `/harmonize` (four parts under a user's melody)."""

from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import AtelierBot
from bot.media.melody import MAX_BARS, MAX_MIDI_BYTES, BadMelody, Melody, parse_midi, parse_text
from bot.media.uploads import download
from bot.pipelines.compose import (
    DEFAULT_BARS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TEMPO,
    INSTRUMENTS,
    MIN_BARS,
    MODEL,
    TEMPO_HIGH,
    TEMPO_LOW,
    MusicRequest,
    random_seed,
)
from bot.views.compose import ComposeButton, create_piece
from deploy.contracts import KEY_NAMES, MUSIC, MUSIC_STYLES, SEED_MAX

Choice = app_commands.Choice
STYLE_CHOICES = [Choice(name=name, value=name) for name in MUSIC_STYLES]
KEY_CHOICES = [Choice(name=name, value=name) for name in KEY_NAMES]  # 24: within Discord's 25
INSTRUMENT_CHOICES = [Choice(name=name, value=name) for name in INSTRUMENTS]
T_LOW, T_HIGH = MUSIC.input("temperature").low, MUSIC.input("temperature").high
MELODY_PREVIEW = 120  # characters of the melody shown in the answer


class Compose(commands.Cog):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @app_commands.command(name="compose", description="Compose a piece of music.")
    @app_commands.describe(
        style="chorale: four-part, like Bach's chorales; folk: a folk tune.",
        bars=f"Length in bars of 4/4 ({MIN_BARS}–{MAX_BARS}).",
        tempo="Quarter notes per minute.",
        key="The key to write in.",
        temperature="Below 1: safer, plainer music. Above 1: more adventurous.",
        seed="The same seed gives the same piece. Leave empty for a random one.",
        instrument="What plays it.",
    )
    @app_commands.choices(style=STYLE_CHOICES, key=KEY_CHOICES, instrument=INSTRUMENT_CHOICES)
    async def compose(
        self,
        interaction: discord.Interaction,
        style: str = MUSIC_STYLES[0],
        bars: app_commands.Range[int, MIN_BARS, MAX_BARS] = DEFAULT_BARS,
        tempo: app_commands.Range[int, TEMPO_LOW, TEMPO_HIGH] = DEFAULT_TEMPO,
        key: str = KEY_NAMES[0],
        temperature: app_commands.Range[float, T_LOW, T_HIGH] = DEFAULT_TEMPERATURE,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        instrument: str = "choir",
    ) -> None:
        await interaction.response.defer(thinking=True)
        request = MusicRequest(
            seed=random_seed() if seed is None else seed, style=style, bars=bars, tempo=tempo,
            key=key, temperature=temperature, instrument=instrument,
        )  # fmt: skip
        await create_piece(self.bot, interaction, request)

    @app_commands.command(name="harmonize", description="Four-part harmony under your melody.")
    @app_commands.describe(
        melody='Notes like "C4 D4 E4:2 r F#4/8 G4/8" (:beats or /value; r rests).',
        midi="Or a .mid file: its top melodic line is harmonised.",
        style="The style of the harmony.",
        tempo="Quarter notes per minute (default: the MIDI file's, or 90).",
        key="The key (default: guessed from the melody).",
        temperature="Below 1: safer, plainer harmony. Above 1: more adventurous.",
        seed="The same seed gives the same harmony. Leave empty for a random one.",
        instrument="What plays it.",
    )
    @app_commands.choices(style=STYLE_CHOICES, key=KEY_CHOICES, instrument=INSTRUMENT_CHOICES)
    async def harmonize(
        self,
        interaction: discord.Interaction,
        melody: str | None = None,
        midi: discord.Attachment | None = None,
        style: str = MUSIC_STYLES[0],
        tempo: app_commands.Range[int, TEMPO_LOW, TEMPO_HIGH] | None = None,
        key: str | None = None,
        temperature: app_commands.Range[float, T_LOW, T_HIGH] = DEFAULT_TEMPERATURE,
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        instrument: str = "choir",
    ) -> None:
        await interaction.response.defer(thinking=True)
        try:
            line = await read_melody(melody, midi)
        except BadMelody:  # store the failed job too, with what the user gave
            given = melody[:500] if melody is not None else (midi.filename if midi else None)
            await self.bot.jobs.start(interaction, model=MODEL, params={"melody_input": given})
            raise
        if tempo is None:
            tempo = round(min(max(line.tempo, TEMPO_LOW), TEMPO_HIGH)) if line.tempo else None
        request = MusicRequest.harmonize(
            line, seed=random_seed() if seed is None else seed, key=key, style=style,
            tempo=tempo or DEFAULT_TEMPO, temperature=temperature, instrument=instrument,
        )  # fmt: skip
        await create_piece(self.bot, interaction, request, header=f"melody `{preview(line)}`")


async def read_melody(text: str | None, midi: discord.Attachment | None) -> Melody:
    """The melody from text or a .mid attachment (exactly one), or BadMelody."""
    if (text is None) == (midi is None):
        raise BadMelody("Give the melody as text (`melody`) or as a .mid file (`midi`), not both.")
    if text is not None:
        return parse_text(text)
    assert midi is not None
    if midi.size > MAX_MIDI_BYTES:
        raise BadMelody(
            f"`{midi.filename}` is {midi.size / 2**20:.1f} MiB; MIDI files up to "
            f"{MAX_MIDI_BYTES // 2**20} MiB are read."
        )
    data = await download(midi, BadMelody)
    return await asyncio.to_thread(parse_midi, data)


def preview(melody: Melody) -> str:
    text = melody.text()
    return text if len(text) <= MELODY_PREVIEW else text[: MELODY_PREVIEW - 1] + "…"


async def setup(bot: AtelierBot) -> None:
    await bot.add_cog(Compose(bot))
    bot.add_dynamic_items(ComposeButton)
