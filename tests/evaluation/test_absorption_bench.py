"""``sae-lens-freq bench absorption`` end to end (a subprocess), and its flag checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sae_lens_freq.cli import bench

ARCHITECTURES = {
    "standard",
    "freq_weighted",
    "topk",
    "batchtopk",
    "matryoshka_batchtopk",
}
REQUIRED = {
    "architecture": str,
    "contender": str,
    "seed": int,
    "target_l0": float,
    "l0": float,
    "absorption_rate": float,
    "parent_fnr_with_child": float,
    "parent_fnr_without_child": float,
    "child_parent_cosine": float,
    "mcc": float,
    "uniqueness": float,
    "explained_variance": float,
    "dead_latents": int,
    "knob_value": float,
    "config": dict,
    "versions": dict,
    "bench_wall_seconds": float,
}


@pytest.mark.slow
def test_bench_absorption_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = [
        "absorption", "--steps", "250", "--seeds", "2", "--freq-coefficients", "0.5",
        "--eval-samples", "2000", "--max-calibration-runs", "10", "--workers", "1",
        "--l1-guess", "0.6",
        "--no-progress", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "sae_lens_freq", "bench", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads((out / "results.json").read_text())
    assert isinstance(records, list) and len(records) == 5 * 2  # contenders x seeds
    assert {r["architecture"] for r in records} == ARCHITECTURES
    for r in records:
        for key, kind in REQUIRED.items():
            value = r[key]
            ok = (
                isinstance(value, (int, float))
                if kind is float
                else isinstance(value, kind)
            )
            assert ok and not isinstance(value, bool), (key, value)
        assert 0.0 <= r["absorption_rate"] <= 1.0
        assert (r["freq_coefficient"] == 0.5) == (r["architecture"] == "freq_weighted")
        assert r["target_l0"] == 3.0
        # every contender lands within the 5% L0 tolerance of the target
        assert abs(r["l0"] / r["target_l0"] - 1) <= 0.05, (r["contender"], r["l0"])
        assert r["l0_within_tolerance"] is True
        assert set(r["versions"]) >= {"sae_lens", "sae_lens_freq", "torch"}
        assert r["config"]["steps"] == 250
    table = (out / "results.md").read_text()
    assert "| 3 | freq_weighted (beta=0.5) |" in table and "Fairness:" in table
    assert table.splitlines()[0] in proc.stdout  # the table is also printed
    for png in ("absorption_vs_l0.png", "explained_variance_vs_l0.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--steps", "3"], "--steps"),
        (["--seeds", "0"], "--seeds"),
        (["--contenders", "standard,gated"], "--contenders"),
        (["--freq-coefficients", "0.5,-2"], "--freq-coefficients"),
        (["--freq-coefficients", "half"], "--freq-coefficients"),
        (["--target-l0", "0"], "--target-l0"),
        (["--workers", "0"], "--workers"),
        (["--l1-guess", "-1"], "--l1-guess"),
    ],
)
def test_bad_flags_fail_early_naming_the_flag(
    args: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["absorption", *args])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_unknown_benchmark_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["nonsense"])
    assert "absorption" in capsys.readouterr().err
