"""``sae-lens-freq saebench``: settings parsing, errors, and a reproducible real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from saebench_fixtures import ABSORPTION, AbsorptionRun
from transformer_lens import HookedTransformer

from sae_lens_freq.cli.saebench import EVAL_NAMES, main, parse_settings
from sae_lens_freq.evaluation.saebench import EVALS
from sae_lens_freq.models import save_hooked_transformer


def test_settings_parse_json_values_and_plain_strings() -> None:
    assert EVAL_NAMES == EVALS  # the CLI lists them without importing SAEBench
    parsed = parse_settings(
        ["core.context_size=64", "core.dataset=my/text", "scr.n_values=[2, 20]"]
    )
    assert parsed == {
        "core": {"context_size": 64, "dataset": "my/text"},
        "scr": {"n_values": [2, 20]},
    }
    with pytest.raises(ValueError, match=r"EVAL\.FIELD=VALUE"):
        parse_settings(["context_size=64"])
    with pytest.raises(ValueError, match="'cor' is not one of"):
        parse_settings(["cor.context_size=64"])


def test_errors_exit_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "none"), "--out", str(tmp_path), "--set", "x=1"]) == 2
    assert "EVAL.FIELD=VALUE" in capsys.readouterr().err
    assert main([str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert "is not an SAE folder" in capsys.readouterr().err


def test_cli_run_in_a_fresh_process_reproduces_the_api_run(
    absorption_run: AbsorptionRun, letters_model: HookedTransformer, tmp_path: Path
) -> None:
    # A new process has another tokenizer.vocab order and fresh generators: the
    # sorted word lists and seeding must give the very same numbers.
    model_dir = save_hooked_transformer(letters_model, tmp_path / "model")
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    settings = [f"--set=absorption.{k}={json.dumps(v)}" for k, v in ABSORPTION.items()]
    command = [
        sys.executable, "-m", "sae_lens_freq", "saebench", str(absorption_run.checkpoint),
        "--evals", "absorption", "--model-path", str(model_dir), "--out", str(out),
        *settings,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "7"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr[-3000:]
    [name] = absorption_run.results
    assert name in done.stdout and "| absorption |" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"][name] == absorption_run.results[name]
    assert list(cwd.iterdir()) == []
