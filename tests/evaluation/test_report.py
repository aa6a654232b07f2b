"""`sae-lens-freq report`: log readers (metrics.jsonl, W&B offline), Table 1, curves."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import wandb
from sae_lens import (
    LanguageModelSAETrainingRunner,
)
from safetensors.torch import save_file
from transformer_lens import HookedTransformer

from sae_lens_freq.cli import main as cli_main
from sae_lens_freq.evaluation.report import summarize_runs, table1_markdown
from sae_lens_freq.evaluation.run_logs import (
    final_value,
    iter_wandb_records,
    load_training_log,
    read_metrics_jsonl,
    read_wandb_offline_run,
    series,
)
from sae_lens_freq.training.presets import tiny_offline_config

HOOK = "blocks.1.hook_resid_post"  # conftest.TINY_HOOK


def make_run(
    folder: Path,
    architecture: str,
    beta: float | None,
    tokens: int,
    eval_metrics: dict[str, float] | None,
    log: list[dict[str, Any]],
) -> Path:
    """A synthetic runner output: cfg.json, weights, runner_cfg.json, eval.json, metrics.jsonl."""
    folder.mkdir(parents=True)
    details = {"l1_coefficient": 0.04} | (
        {"freq_coefficient": beta} if beta is not None else {}
    )
    meta = {
        "hook_name": HOOK,
        "model_name": "tiny",
        "training_architecture": architecture,
        "training_architecture_details": details,
    }
    cfg = {"architecture": "standard", "d_in": 4, "d_sae": 8, "metadata": meta}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({"W_enc": torch.zeros(4, 8)}, folder / "sae_weights.safetensors")
    (folder / "runner_cfg.json").write_text(
        json.dumps({"training_tokens": tokens, "output_path": str(folder)})
    )
    if eval_metrics is not None:
        (folder / "eval.json").write_text(json.dumps({"metrics": eval_metrics}))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    return folder


def _log(final_loss: float, n: int = 4) -> list[dict[str, Any]]:
    return [
        {
            "step": s,
            "n_training_tokens": 1000 * (s + 1),
            "losses/overall_loss": final_loss * (n - s),
            "metrics/l0": 10.0 + s,
            "metrics/explained_variance": 0.1 * s,
            "model_behavior_preservation": {"kl_div_score": 0.2 * s},
        }
        for s in range(n)
    ]


@pytest.fixture
def wandb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """W&B in offline mode writing under a fresh folder (its settings singleton reset)."""
    folder = tmp_path / "wb"
    folder.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(folder))
    wandb.teardown()  # wandb caches WANDB_DIR from its first run in the process
    yield folder
    wandb.teardown()


def _finished_run_file(wandb_dir: Path) -> Path:
    """The offline run's file once wandb-core has written its exit record."""
    (file,) = wandb_dir.glob("wandb/offline-run-*/run-*.wandb")
    for _ in range(100):
        kinds = [r.WhichOneof("record_type") for r in iter_wandb_records(file)]
        if "exit" in kinds:
            return file
        time.sleep(0.1)
    raise AssertionError(f"{file} never got its exit record")


def test_metrics_jsonl_reader(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    rows = _log(2.0)
    log.write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9, "losses/ov'
    )
    read = read_metrics_jsonl(log)  # the truncated last line is a run still writing
    assert len(read) == 4
    assert read[2]["model_behavior_preservation/kl_div_score"] == pytest.approx(0.4)
    assert series(read, "kl_div_score") == (
        [1000.0, 2000.0, 3000.0, 4000.0],
        [0.0, 0.2, 0.4, pytest.approx(0.6)],
    )
    assert final_value(read, "loss") == 2.0
    assert final_value(read, "ce_loss_score") is None
    log.write_text('{"step": 0}\nnot json\n{"step": 1}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2"):
        read_metrics_jsonl(log)
    with pytest.raises(ValueError, match="series name='nope'"):
        series(read, "nope")


def test_wandb_offline_run_reads_back_what_was_logged(
    tmp_path: Path, wandb_dir: Path
) -> None:
    run_dir = tmp_path / "run"
    logged: dict[int, dict[str, float]] = {}
    run = wandb.init(project="t", config={"output_path": str(run_dir)})
    for step in range(300):  # enough records to span several 32 KiB blocks
        row = {
            "losses/overall_loss": 1.0 / (step + 1),
            "metrics/l0": float(step % 7),
            "details/n_training_samples": 64.0 * (step + 1),
            "padding/" + "x" * 80: float(step),
        }
        run.log(row, step=step)
        if step % 50 == 49:
            run.log(
                {"model_behavior_preservation": {"kl_div_score": step / 300}}, step=step
            )
            row = row | {"model_behavior_preservation/kl_div_score": step / 300}
        logged[step] = row
    run.finish()
    file = _finished_run_file(wandb_dir)
    assert file.stat().st_size > 3 * 32768
    rows = read_wandb_offline_run(file.parent)
    assert [int(r["step"]) for r in rows] == list(range(300))
    for row in rows:
        expected = logged[int(row["step"])]
        assert {k: row[k] for k in expected} == pytest.approx(expected)
        assert row["n_training_tokens"] == expected["details/n_training_samples"]
    run_dir.mkdir()
    found = load_training_log(run_dir, wandb_dirs=[wandb_dir])
    assert found is not None and found[1] == str(file)
    assert final_value(found[0], "kl_div_score") == pytest.approx(299 / 300)


def test_table1_layout(tmp_path: Path) -> None:
    runs = [
        make_run(
            tmp_path / "std",
            "standard",
            None,
            4096,
            {
                "kl_div_score": 0.987,
                "explained_variance": 0.82,
                "l0": 1639.48,
                "cossim": 0.9,
                "ce_loss_score": 0.95,
                "mse": 3.0,
            },
            _log(15402.85),
        ),
        make_run(
            tmp_path / "b01",
            "freq_weighted",
            0.1,
            4096,
            {"kl_div_score": 0.995, "explained_variance": 0.918, "l0": 1781.99},
            _log(3900.79),
        ),
        make_run(tmp_path / "b05", "freq_weighted", 0.5, 4096, None, _log(3900.49)),
        make_run(
            tmp_path / "long",
            "freq_weighted",
            0.5,
            20_000_000,
            {"kl_div_score": 0.9972, "explained_variance": 0.9492, "l0": 1947.72},
            _log(2461.98),
        ),
    ]
    rows = summarize_runs(runs)
    assert [r.label for r in rows] == [
        "Standard SAE",
        "FW-SAE (β=0.1)",
        "FW-SAE (β=0.5, 4.1k tokens)",
        "FW-SAE (β=0.5, 20M tokens)",
    ]
    text = table1_markdown(rows)
    lines = text.splitlines()
    assert (
        lines[0]
        == "| Model | KL Divergence | Explained Var. | L0 Sparsity | Final Loss |"
    )
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:6]]
    assert cells[0] == ["Standard SAE", "0.9870", "0.8200", "1639.48", "15402.85"]
    assert cells[3] == [
        "FW-SAE (β=0.5, 20M tokens)",
        "0.9972",
        "0.9492",
        "1947.72",
        "2461.98",
    ]
    # no eval.json: the last logged values, marked
    assert cells[2][1:] == ["0.6000†", "0.3000†", "13.00†", "3900.49"]
    assert "† from the run's training log" in text
    extra = next(
        i for i, line in enumerate(lines) if line.startswith("| Model | CE Loss Score")
    )
    assert lines[extra + 2].split("|")[1:6] == [
        " Standard SAE ",
        " 0.9500 ",
        " 0.9000 ",
        " 3.0000 ",
        " 4.1k ",
    ]
    assert " n/a " in lines[extra + 3]
    named = summarize_runs(runs[:2], labels=["baseline"])
    assert [r.label for r in named] == ["baseline", "FW-SAE (β=0.1)"]
    with pytest.raises(ValueError, match="labels has 3 entries for 2 runs"):
        summarize_runs(runs[:2], labels=["a", "b", "c"])


def test_report_cli_on_a_real_run_logged_to_wandb_offline(
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path: Path,
    wandb_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = tiny_offline_config(
        str(text_dataset_dir),
        d_sae=96,
        l1_coefficient=0.04,
        training_tokens=256 * 24,
        train_batch_size_tokens=256,
        lr=1e-3,
        lr_end=1e-4,
        seed=0,
        output_path=str(tmp_path / "run"),
        log_to_wandb=True,
        wandb_log_frequency=2,
        eval_every_n_wandb_logs=4,
        log_weights_to_wandb=False,
        wandb_project="t",
    )
    LanguageModelSAETrainingRunner(cfg, override_model=tiny_model).run()
    out = tmp_path / "report"
    wandb_file = _finished_run_file(wandb_dir)
    code = cli_main(
        [
            "report",
            str(tmp_path / "run"),
            "--wandb-dir",
            str(wandb_dir),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    table = json.loads((out / "table1.json").read_text())[0]
    rows = read_wandb_offline_run(wandb_file)
    # SAELens logs when (step + 1) % 2 == 0; tokens = (step + 1) * batch
    assert [int(r["step"]) for r in rows if "metrics/l0" in r] == list(range(1, 24, 2))
    assert all(
        r["n_training_tokens"] == 256 * (r["step"] + 1)
        for r in rows
        if "metrics/l0" in r
    )
    assert table["label"] == "FW-SAE (β=0.5)" and table["training_tokens"] == 256 * 24
    assert table["metrics"]["final_training_loss"] == final_value(rows, "loss")
    assert table["metrics"]["ce_loss_score"] is not None  # SAELens's evaluator, via W&B
    assert set(table["from_training_log"]) == {
        "ce_loss_score",
        "explained_variance",
        "l0",
    }
    report = (out / "report.md").read_text()
    assert "| FW-SAE (β=0.5) |" in report and "training_curves.png" in report
    png = (out / "training_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert re.search(r"\| FW-SAE \(β=0\.5\) \| n/a \|", capsys.readouterr().out)
