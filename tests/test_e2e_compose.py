"""End to end: /compose, /harmonize and their buttons through the stand-in and a real Triton.

Expected notes come from the served TorchScript file run in this process, and from the
melodies written out by hand; MIDI files are read back with mido alone.
"""

import asyncio
import functools
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.app import AtelierBot
from bot.media import audio, score
from bot.media.images import read_png_record
from bot.pipelines.compose import decode_grid, read_midi_record, read_opus_record
from bot.stack import running_bot
from bot.standin import DiscordStandIn, StandInMessage
from bot.store.models import Job
from deploy.contracts import FREE, HOLD, KEY_NAMES, MUSIC_STYLES, REST, events_to_grid
from deploy.triton import LocalTriton
from tests.helpers import latest_version, make_settings
from tests.test_compose import midi_notes
from tests.test_e2e_buttons import button
from tests.test_melody import midi_bytes

TIMEOUT = 180
HAS_LILYPOND = score.lilypond_path() is not None


@functools.cache
def served_model() -> torch.jit.ScriptModule:
    return torch.jit.load(str(latest_version("music") / "model.pt"))


def local_music(
    given: np.ndarray, *, style: str = "chorale", key: str = "C major", seed: int,
    temperature: float = 0.9, top_k: int = 0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The served TorchScript model in this process: (grid, events without padding)."""
    column = lambda value, dtype=torch.int64: torch.tensor([[value]], dtype=dtype)  # noqa: E731
    with torch.inference_mode():
        grid, events = served_model()(
            torch.from_numpy(given[None].astype(np.int64)),
            column(MUSIC_STYLES.index(style)),
            column(KEY_NAMES.index(key)),
            column(seed),
            column(temperature, torch.float32),
            column(top_k),
        )
    events = events[0].numpy()
    return grid[0].numpy(), events[events[:, 0] >= 0]


async def local_events(given: np.ndarray, **options) -> np.ndarray:
    """local_music's events, computed off the event loop (the bot shares it)."""
    return (await asyncio.to_thread(functools.partial(local_music, given, **options)))[1]


async def finished_job(bot: AtelierBot, message: StandInMessage) -> Job:
    """The job whose id `message` shows, once it is stored as finished."""
    job_id = message.content.split("job `")[1].split("`")[0]
    done = asyncio.ensure_future(
        bot.wait_for("job_finished", check=lambda j: j == job_id, timeout=TIMEOUT)
    )
    job = await bot.jobs.get(job_id)
    if job is None or job.status != "done":
        await done
        job = await bot.jobs.get(job_id)
    done.cancel()
    assert job is not None
    return job


async def answer(handle, timeout: float = TIMEOUT) -> StandInMessage:
    return await handle.wait_for(lambda m: not m.deferred, timeout=timeout)


def files(standin: DiscordStandIn, message: StandInMessage) -> dict[str, bytes]:
    """The attachments by kind: ogg, mid, roll, score."""
    kinds = {}
    for attachment in message.attachments:
        name = attachment["filename"]
        kind = name.rsplit(".", 1)[1]
        if name.endswith("-roll.png"):
            kind = "roll"
        elif name.endswith("-score.png"):
            kind = "score"
        kinds[kind] = standin.attachment_bytes(attachment)
    return kinds


def buttons(message: StandInMessage) -> set[str]:
    return {
        (c.get("emoji") or {}).get("name", "") for row in message.components
        for c in row["components"]
    }  # fmt: skip


def check_audio(data: bytes, bars: int, tempo: float) -> None:
    samples, rate = audio.decode_audio(data)
    expected = bars * 16 * 60 / tempo / 4 + 1.0  # every bar, then a second of release
    assert len(samples) / rate == pytest.approx(expected, abs=0.05)
    assert np.sqrt(np.mean(samples[: int((expected - 1) * rate)] ** 2)) > 0.005


def as_tuples(events: np.ndarray) -> list[tuple[int, ...]]:
    return sorted(tuple(e) for e in np.asarray(events).tolist())


async def test_compose_answers_with_audio_midi_piano_roll_and_sheet_music(
    bot: AtelierBot, standin: DiscordStandIn
) -> None:
    options = {"seed": 5, "bars": 4, "tempo": 120, "key": "D minor", "instrument": "organ"}
    handle = await standin.invoke("compose", options)
    assert (await handle.acknowledged(timeout=3))["type"] == 5
    message = await answer(handle)
    assert not message.ephemeral and "seed `5`" in message.content and "D minor" in message.content
    got = files(standin, message)
    assert {"ogg", "mid", "roll"} <= set(got) and message.attachments[0]["filename"].endswith(
        ".ogg"
    )

    expected = await local_events(np.full((64, 4), FREE), key="D minor", seed=5)
    assert as_tuples(midi_notes(got["mid"])) == as_tuples(expected)
    check_audio(got["ogg"], bars=4, tempo=120)

    record = read_midi_record(got["mid"])
    version = latest_version("music").name
    assert (record["model"], record["model_version"], record["seed"]) == ("music", version, 5)
    assert record["params"] == {
        "style": "chorale", "bars": 4, "tempo": 120, "key": "D minor", "temperature": 0.9,
        "top_k": 0, "instrument": "organ",
    }  # fmt: skip
    assert read_opus_record(got["ogg"]) == record == read_png_record(got["roll"])
    if HAS_LILYPOND:
        assert read_png_record(got["score"]) == record
        assert buttons(message) == {"🎲", "➕"}  # the sheet was sent: no 🎼
    job = await finished_job(bot, message)
    assert (job.command, job.seed, job.status) == ("compose", 5, "done")
    assert job.model_version == version and job.message_id == message.id

    again = files(standin, await answer(await standin.invoke("compose", options)))
    assert again == got  # same seed and options: the same bytes


async def test_harmonize_text_keeps_the_melody_exactly(
    bot: AtelierBot, standin: DiscordStandIn
) -> None:
    melody = "G4 A4 B4:2 | D5/8 C5/8 B4/8 A4/8 G4:2 | r E4 F#4 G4:1.5"
    soprano = [(67, 0, 4), (69, 4, 4), (71, 8, 8), (74, 16, 2), (72, 18, 2), (71, 20, 2),
               (69, 22, 2), (67, 24, 8), (64, 36, 4), (66, 40, 4), (67, 44, 6)]  # fmt: skip
    message = await answer(
        await standin.invoke("harmonize", {"melody": melody, "seed": 8, "tempo": 100})
    )
    assert not message.ephemeral and "melody `G4 A4 B4:2" in message.content
    got = files(standin, message)
    notes = midi_notes(got["mid"])
    assert [(p, s, d) for v, p, s, d in notes if v == 0] == soprano
    assert {v for v, *_ in notes} == {0, 1, 2, 3}  # four parts

    record = read_midi_record(got["mid"])
    assert record["params"]["key"] == "G major" and record["params"]["bars"] == 4  # guessed
    given = np.full((64, 4), FREE)
    given[:, 0] = REST
    for pitch, start, duration in soprano:
        given[start, 0], given[start + 1 : start + duration, 0] = pitch, HOLD
    np.testing.assert_array_equal(decode_grid(record["params"]["melody"], 1)[:, 0], given[:, 0])
    expected = await local_events(given, key="G major", seed=8)
    assert as_tuples(notes) == as_tuples(expected)
    check_audio(got["ogg"], bars=4, tempo=100)


async def test_harmonize_a_midi_file_takes_its_tempo(
    bot: AtelierBot, standin: DiscordStandIn
) -> None:
    tune = midi_bytes([[(0, 48, 0, 16)], [(0, 72, 0, 4), (0, 71, 4, 8), (0, 72, 8, 16)]], tempo=72)
    handle = await standin.invoke(
        "harmonize", {"seed": 2, "key": "C major"}, attachments={"midi": ("tune.mid", tune, "")}
    )
    message = await answer(handle)
    notes = midi_notes(files(standin, message)["mid"])
    assert [(p, s, d) for v, p, s, d in notes if v == 0] == [(72, 0, 4), (71, 4, 4), (72, 8, 8)]
    assert "♩ = 72" in message.content


async def test_every_button(
    bot: AtelierBot, standin: DiscordStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:  # no LilyPond for this one: the 🎼 button shows
        patch.setattr(score, "lilypond_path", lambda: None)
        first = await answer(await standin.invoke("compose", {"seed": 11, "bars": 4}))
    assert buttons(first) == {"🎲", "➕", "🎼"} and "score" not in files(standin, first)
    parent = files(standin, first)
    parent_notes = midi_notes(parent["mid"])

    # Only the requester may ask for another piece or a continuation.
    refused = await standin.click(first, button(first, "🎲"), user="bob")
    assert "can use 🎲 and ➕" in (await refused.wait_for(lambda m: m.ephemeral)).content

    # 🎲: the same options with a new seed.
    another = await answer(await standin.click(first, button(first, "🎲")))
    record = read_midi_record(files(standin, another)["mid"])
    seed = record["seed"]
    assert seed != 11 and record["params"]["bars"] == 4 and f"seed `{seed}`" in another.content
    expected = await local_events(np.full((64, 4), FREE), seed=seed)
    assert as_tuples(midi_notes(files(standin, another)["mid"])) == as_tuples(expected)

    # ➕: four more bars after the first four, which stay as they were.
    longer = await answer(await standin.click(first, button(first, "➕")))
    got = files(standin, longer)
    assert read_midi_record(got["mid"])["params"]["bars"] == 8 and "8 bars" in longer.content
    grid = events_to_grid(np.array(midi_notes(got["mid"])), 128)
    np.testing.assert_array_equal(grid[:64], events_to_grid(np.array(parent_notes), 64))
    check_audio(got["ogg"], bars=8, tempo=90)

    # 🎼: the first piece's sheet music, which anyone may ask for.
    if HAS_LILYPOND:
        sheet = await answer(await standin.click(first, button(first, "🎼"), user="bob"))
        (attachment,) = sheet.attachments
        assert attachment["filename"].endswith("-score.png")
        data = standin.attachment_bytes(attachment)
        assert read_png_record(data) == read_midi_record(parent["mid"])
    job = await finished_job(bot, longer)
    assert job.command == "compose.continue" and job.parent_id


BAD = {
    "unreadable": ({"melody": "C4 D4 H4"}, {}, "can't read `H4`"),
    "too-low": ({"melody": "C2 D2 E2"}, {}, "below the soprano range"),
    "too-high": ({"melody": "C4 G6"}, {}, "above the soprano range"),
    "too-long": ({"melody": "C4:200"}, {}, "longer than 32 bars"),
    "rests-only": ({"melody": "r r"}, {}, "no notes"),
    "not-midi": ({}, {"midi": ("tune.mid", b"not a midi file", "")}, "isn't a MIDI file"),
    "both": ({"melody": "C4"}, {"midi": ("t.mid", midi_bytes([[(0, 60, 0, 4)]]), "")}, "not both"),
    "neither": ({}, {}, "not both"),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_bad_melodies_get_an_ephemeral_message(
    bot: AtelierBot, standin: DiscordStandIn, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.errors")
    options, attachments, text = BAD[case]
    handle = await standin.invoke("harmonize", options, attachments=attachments)
    reply = await handle.wait_for(lambda m: m.ephemeral, timeout=30)
    assert text in reply.content and "job `" in reply.content
    assert not any(m.attachments for m in handle.messages)
    job_id = reply.content.split("job `")[1].split("`")[0]
    assert any(job_id in r.getMessage() for r in caplog.records)
    job = await bot.jobs.get(job_id)
    assert job is not None and (job.command, job.status) == ("harmonize", "failed")
    assert bot.is_ready() and not bot.is_closed()


async def test_out_of_range_compose_options(bot: AtelierBot, standin: DiscordStandIn) -> None:
    with pytest.raises(ValueError):
        await standin.invoke("compose", {"bars": 40})
    handle = await standin.invoke("compose", {"bars": 40, "seed": 1}, enforce_limits=False)
    reply = await handle.wait_for(lambda m: m.ephemeral, timeout=30)
    assert "1 to 32 bars" in reply.content


async def test_sheet_button_without_lilypond_says_so(
    bot: AtelierBot, standin: DiscordStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.views.compose as views

    monkeypatch.setattr(score, "lilypond_path", lambda: None)
    monkeypatch.setattr(views, "lilypond_path", lambda: None)
    message = await answer(await standin.invoke("compose", {"seed": 12, "bars": 4}))
    handle = await standin.click(message, button(message, "🎼"))
    reply = await handle.wait_for(lambda m: m.ephemeral, timeout=30)
    assert "needs LilyPond" in reply.content and "job `" in reply.content


async def test_buttons_work_after_a_restart(
    tmp_path: Path, triton: LocalTriton, standin: DiscordStandIn
) -> None:
    settings = make_settings(tmp_path, triton_url=triton.grpc_url)
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1):
        message = await answer(await standin.invoke("compose", {"seed": 21, "bars": 4}))
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1):
        another = await answer(await standin.click(message, button(message, "🎲")))
    record = read_midi_record(files(standin, another)["mid"])
    assert record["seed"] != 21 and record["params"]["bars"] == 4
