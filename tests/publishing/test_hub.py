"""`sae-lens-freq publish`: dry-run layout, upload through SAELens, token and failure safety.

The Hub is faked at the HfApi calls SAELens's uploader and ours make (repo_info,
create_repo, upload_folder); every socket connection is refused and recorded, so a
test that reached the network would fail.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sae_lens.training.upload_saes_to_huggingface as saelens_upload
import torch
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS
from sae_lens import (
    SAE,
    LanguageModelSAETrainingRunner,
    StandardTrainingSAEConfig,
)
from safetensors.torch import load_file
from transformer_lens import HookedTransformer

from sae_lens_freq import FreqWeightedTrainingSAEConfig
from sae_lens_freq.cli import main as cli_main
from sae_lens_freq.evaluation.metrics import EvalSettings, evaluate_run, write_eval
from sae_lens_freq.publishing import publish, stage_repo
from sae_lens_freq.training.presets import tiny_offline_config

HOOK = "blocks.1.hook_resid_post"  # conftest.TINY_HOOK
REPO = "someone/tiny-freq-saes"
SENTINEL = "hf_SENTINEL_token_must_never_leak_0123456789"


def _train(model: HookedTransformer, data: Path, out: Path, sae_cfg: Any) -> Path:
    cfg = tiny_offline_config(
        str(data),
        training_tokens=2048,
        train_batch_size_tokens=256,
        n_batches_for_norm_estimate=4,
        lr=1e-3,
        lr_end=1e-4,
        seed=0,
        output_path=str(out / "run"),
        checkpoint_path=str(out / "ckpt"),
        n_checkpoints=1,
    )
    cfg.sae = sae_cfg
    LanguageModelSAETrainingRunner(cfg, override_model=model).run()
    return out / "run"


@pytest.fixture(scope="module")
def sources(
    tiny_model: HookedTransformer,
    text_dataset_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """A FreqSAE run (with eval.json, a SAEBench JSON), its checkpoint, a standard run."""
    base = tmp_path_factory.mktemp("publish")
    freq = _train(
        tiny_model,
        text_dataset_dir,
        base / "freq",
        FreqWeightedTrainingSAEConfig(
            d_in=64, d_sae=96, normalize_activations="expected_average_only_in"
        ),
    )
    settings = EvalSettings(
        n_eval_reconstruction_batches=1, n_eval_sparsity_variance_batches=1
    )
    write_eval(
        evaluate_run(freq, settings, model=tiny_model, verbose=False),
        freq / "eval.json",
    )
    saebench = {
        "eval_type_id": "absorption_first_letter",
        "eval_result_metrics": {"mean": {"mean_absorption_fraction_score": 0.125}},
    }
    (freq / "saebench_absorption.json").write_text(json.dumps(saebench))
    (checkpoint,) = (base / "freq" / "ckpt").glob("*/*")
    standard = _train(
        tiny_model,
        text_dataset_dir,
        base / "std",
        StandardTrainingSAEConfig(d_in=64, d_sae=96),
    )
    return {"freq": freq, "checkpoint": checkpoint, "standard": standard}


class FakeHub:
    """Stands in for the Hub: repositories are folders under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.commits: list[str] = []
        self.fail_on_call: int | None = None

    def repo_info(self, repo_id: str, **_: Any) -> dict[str, str]:
        if not (self.root / repo_id).is_dir():
            request = httpx2.Request("GET", "http://hub.invalid/api/models")
            raise RepositoryNotFoundError(
                "fake: no repo", response=httpx2.Response(404, request=request)
            )
        return {"id": repo_id}

    def create_repo(self, repo_id: str, **_: Any) -> str:
        (self.root / repo_id).mkdir(parents=True)
        return repo_id

    def upload_folder(
        self,
        *,
        repo_id: str,
        folder_path: str | Path,
        path_in_repo: str | None = None,
        commit_message: str | None = None,
        allow_patterns: list[str] | None = None,
        ignore_patterns: list[str] | None = None,
        **_: Any,
    ) -> str:
        if self.fail_on_call == len(self.commits):
            raise OSError("fake: connection reset during upload")
        folder = Path(folder_path)
        files = sorted(
            p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
        )
        ignore = list(ignore_patterns or []) + DEFAULT_IGNORE_PATTERNS
        for rel in filter_repo_objects(
            files, allow_patterns=allow_patterns, ignore_patterns=ignore
        ):
            target = self.root / repo_id / (path_in_repo or "") / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((folder / rel).read_bytes())
        self.commits.append(str(commit_message))
        return "fake-commit"


@pytest.fixture
def fake_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[FakeHub, list[Any]]:
    hub = FakeHub(tmp_path / "hub")
    hub.root.mkdir()
    connections: list[Any] = []

    def refuse(*args: Any, **_: Any) -> Any:
        connections.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(
        socket.socket, "connect", lambda _self, address: refuse(address)
    )
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(
        HfApi, "repo_info", lambda _api, repo_id, **kw: hub.repo_info(repo_id, **kw)
    )
    monkeypatch.setattr(
        HfApi, "create_repo", lambda _api, repo_id, **kw: hub.create_repo(repo_id, **kw)
    )
    monkeypatch.setattr(saelens_upload, "create_repo", hub.create_repo)
    monkeypatch.setattr(
        HfApi, "upload_folder", lambda _api, **kw: hub.upload_folder(**kw)
    )
    return hub, connections


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_dry_run_layout_loads_with_plain_saelens(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "dry"
    args = [str(sources[k]) for k in ("freq", "checkpoint", "standard")]
    ids = ["freq", "freq_ckpt", "standard"]
    sae_id_args = [a for sae_id in ids for a in ("--sae-id", sae_id)]
    assert (
        cli_main(
            ["publish", *args, "--repo", REPO, "--dry-run", str(out), *sae_id_args]
        )
        == 0
    )
    tree = _tree(out)
    for sae_id in ids:
        assert {
            f"{sae_id}/cfg.json",
            f"{sae_id}/sae_weights.safetensors",
            f"{sae_id}/sparsity.safetensors",
        } <= set(tree)
    assert {
        "README.md",
        "freq/feature_freq.safetensors",
        "freq/eval.json",
        "freq/saebench_absorption.json",
        "freq_ckpt/feature_freq.safetensors",
    } <= set(tree)
    assert "standard/feature_freq.safetensors" not in tree
    assert (
        tree["freq/sae_weights.safetensors"]
        == _tree(sources["freq"])["sae_weights.safetensors"]
    )

    # the re-exported checkpoint: scaling folded in, feature_freq kept
    ckpt_sae = SAE.load_from_disk(sources["checkpoint"])
    scale = json.loads((sources["checkpoint"] / "activation_scaler.json").read_text())[
        "scaling_factor"
    ]
    assert scale is not None and abs(scale - 1) > 1e-3
    exported = SAE.load_from_disk(out / "freq_ckpt")
    x = torch.randn(16, 64) * 5
    torch.testing.assert_close(
        exported(x), ckpt_sae(x * scale) / scale, rtol=1e-4, atol=1e-4
    )
    torch.testing.assert_close(
        load_file(out / "freq_ckpt" / "feature_freq.safetensors")["feature_freq"],
        load_file(sources["checkpoint"] / "sae_weights.safetensors")["feature_freq"],
    )

    # a fresh process with plain SAELens only (the plugin never imported)
    script = (
        "import json, sys, torch\nfrom sae_lens import SAE\nout = {}\n"
        f"for sae_id in {ids!r}:\n"
        f"    sae = SAE.load_from_disk({str(out)!r} + '/' + sae_id)\n"
        "    torch.manual_seed(0)\n"
        "    out[sae_id] = [sae.cfg.architecture(), sae(torch.randn(4, 64)).sum().item()]\n"
        "assert not any(m.startswith('sae_lens_freq') for m in sys.modules)\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    for sae_id in ids:
        torch.manual_seed(0)
        expected = SAE.load_from_disk(out / sae_id)(torch.randn(4, 64)).sum().item()
        assert loaded[sae_id][0] == "standard"
        assert loaded[sae_id][1] == pytest.approx(expected, rel=1e-5)


def test_upload_matches_dry_run_without_network_or_token_leak(
    sources: dict[str, Path],
    fake_hub: tuple[FakeHub, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub, connections = fake_hub
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    args = [str(sources["freq"]), str(sources["standard"])]
    assert (
        cli_main(["publish", *args, "--repo", REPO, "--dry-run", str(tmp_path / "dry")])
        == 0
    )
    assert cli_main(["publish", *args, "--repo", REPO]) == 0

    assert connections == []
    remote = _tree(hub.root / REPO)
    assert remote == _tree(tmp_path / "dry")  # the dry run is exactly what was uploaded
    ids = [f"{HOOK}__freq_weighted-beta0.5", f"{HOOK}__standard"]
    assert hub.commits == [
        f"Upload SAE {ids[0]}",
        f"Upload SAE {ids[1]}",
        hub.commits[-1],
    ]
    assert f"{ids[0]}/feature_freq.safetensors" in remote

    captured = capfd.readouterr()
    for text in (captured.out, captured.err, caplog.text):
        assert SENTINEL not in text
    for root in (hub.root, tmp_path / "dry"):
        for path in root.rglob("*"):
            assert not path.is_file() or SENTINEL.encode() not in path.read_bytes()


def test_failed_upload_leaves_local_files_intact(
    sources: dict[str, Path],
    fake_hub: tuple[FakeHub, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, connections = fake_hub
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = {k: _tree(p) for k, p in sources.items()}
    for failing_call in (0, 1):  # during SAELens's upload; during the card commit
        hub.fail_on_call = failing_call
        hub.commits.clear()
        with pytest.raises(OSError, match="connection reset"):
            publish([sources["freq"], sources["checkpoint"]], REPO, sae_ids=["a", "b"])
        assert {k: _tree(p) for k, p in sources.items()} == before
    assert list((tmp_path / "tmp").iterdir()) == []  # staging cleaned up
    assert connections == []


def test_publish_rejects_bad_input(
    sources: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = sources["freq"]
    with pytest.raises(ValueError, match="repo='not a repo'"):
        stage_repo([run], "not a repo", tmp_path / "a")
    with pytest.raises(ValueError, match="sae_ids has 2 entries for 1"):
        stage_repo([run], REPO, tmp_path / "b", sae_ids=["x", "y"])
    with pytest.raises(ValueError, match="must be unique"):
        stage_repo([run, run], REPO, tmp_path / "c")
    with pytest.raises(ValueError, match=r"sae_id='\.\./up'"):
        stage_repo([run], REPO, tmp_path / "d", sae_ids=["../up"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="must be empty"):
        stage_repo([run], REPO, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    with pytest.raises(ValueError, match="no HuggingFace token"):
        publish([run], REPO)
    assert cli_main(["publish", str(run), "--repo", "bad repo"]) == 2
