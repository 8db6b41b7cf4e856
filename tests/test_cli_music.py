"""`atelier compose` and `atelier harmonize`: the slash commands' pipeline from the shell."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from bot.media import audio
from bot.pipelines.compose import read_midi_record, read_opus_record
from deploy.contracts import FREE
from deploy.triton import LocalTriton
from tests.test_cli import ROOT, run
from tests.test_compose import midi_notes
from tests.test_e2e_compose import as_tuples, local_music

SLOW_CPU = {"ATELIER_INFERENCE_TIMEOUT_S": "120"}  # a first call on a busy CPU can be slow


def test_compose_cli_writes_n_pieces(tmp_path: Path, triton: LocalTriton) -> None:
    out = tmp_path / "out"
    args = ["compose", "--seed", "4", "--n", "2", "--bars", "4", "--tempo", "100",
            "--key", "A minor", "--out", str(out)]  # fmt: skip
    result = run(args, tmp_path, timeout=300, TRITON_URL=triton.grpc_url, **SLOW_CPU)
    assert result.returncode == 0, result.stderr
    mids, oggs = sorted(out.glob("*.mid")), sorted(out.glob("*.ogg"))
    assert len(mids) == len(oggs) == 2 and len(list(out.iterdir())) == 4
    for seed, mid, ogg in zip((4, 5), mids, oggs, strict=True):
        record = read_midi_record(mid.read_bytes())
        assert record["seed"] == seed and read_opus_record(ogg.read_bytes()) == record
        assert record["params"]["key"] == "A minor" and record["params"]["bars"] == 4
        _, expected = local_music(np.full((64, 4), FREE), key="A minor", seed=seed)
        assert as_tuples(midi_notes(mid.read_bytes())) == as_tuples(expected)
        samples, rate = audio.decode_audio(ogg.read_bytes())
        assert abs(len(samples) / rate - (4 * 16 * 60 / 100 / 4 + 1)) < 0.05


def test_harmonize_cli(tmp_path: Path, triton: LocalTriton) -> None:
    out = tmp_path / "out"
    args = ["harmonize", "E4 D4 C4 D4 E4 E4 E4:2", "--seed", "3", "--out", str(out)]
    result = run(args, tmp_path, timeout=300, TRITON_URL=triton.grpc_url, **SLOW_CPU)
    assert result.returncode == 0, result.stderr
    (mid,) = out.glob("*.mid")
    soprano = [(p, s, d) for v, p, s, d in midi_notes(mid.read_bytes()) if v == 0]
    assert soprano == [(64, 0, 4), (62, 4, 4), (60, 8, 4), (62, 12, 4), (64, 16, 4),
                       (64, 20, 4), (64, 24, 8)]  # fmt: skip
    bad = run(["harmonize", "C4 Q4", "--out", str(out)], tmp_path, 60, TRITON_URL=triton.grpc_url)
    assert bad.returncode == 1 and "can't read `Q4`" in bad.stderr


def test_music_modules_never_import_torch() -> None:
    modules = "bot.cogs.compose, bot.views.compose, bot.pipelines.compose, bot.media.melody, "
    modules += "bot.media.score"
    code = f"import sys, {modules}; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
