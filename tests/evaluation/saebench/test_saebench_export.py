"""Checkpoints export as SAEBench expects: standard SAE, unit-norm decoder, same function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sae_lens import SAE
from sae_lens.training.activation_scaler import ActivationScaler
from saebench_fixtures import HOOK, freq_checkpoint, letters_sae

from sae_lens_freq import FEATURE_FREQ_FILENAME, load_feature_freq
from sae_lens_freq.evaluation.saebench.export import export_checkpoints


def _reconstruct(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return sae.decode(sae.encode(x))


def test_freq_checkpoint_exports_as_unit_norm_standard_sae(
    letter_directions: torch.Tensor, tmp_path: Path
) -> None:
    ckpt = freq_checkpoint(letter_directions, tmp_path / "run" / "checkpoint_100")
    assert (
        json.loads((ckpt / "cfg.json").read_text())["architecture"] == "freq_weighted"
    )
    raw = SAE.load_from_disk(ckpt)
    assert not torch.allclose(raw.W_dec.norm(dim=1), torch.ones(raw.cfg.d_sae))

    [item] = export_checkpoints([str(ckpt)], tmp_path / "out" / "saes")

    cfg = json.loads((item.folder / "cfg.json").read_text())
    assert cfg["architecture"] == "standard"
    assert cfg["metadata"]["hook_name"] == HOOK
    torch.testing.assert_close(item.sae.W_dec.norm(dim=1), torch.ones(raw.cfg.d_sae))
    x = 4 * torch.randn(32, raw.cfg.d_in)
    torch.testing.assert_close(_reconstruct(item.sae, x), _reconstruct(raw, x))
    assert (item.folder / FEATURE_FREQ_FILENAME).is_file()
    torch.testing.assert_close(load_feature_freq(item.folder), raw.feature_freq)
    assert item.name.startswith("checkpoint_100-") and len(item.name) == 23
    assert item.folder == tmp_path / "out" / "saes" / item.name
    assert not list((tmp_path / "out" / "saes").glob(".staging*"))


def test_a_checkpoints_activation_scaling_is_folded_into_the_export(
    letter_directions: torch.Tensor, tmp_path: Path
) -> None:
    """Weights trained on scaled inputs export as an SAE that takes raw activations."""
    ckpt = freq_checkpoint(letter_directions, tmp_path / "ckpt")
    scale = 0.37
    scaler = ActivationScaler()
    scaler.scaling_factor = scale
    scaler.save(str(ckpt / "activation_scaler.json"))
    raw = SAE.load_from_disk(ckpt)

    [item] = export_checkpoints([str(ckpt)], tmp_path / "out" / "saes")

    x = 4 * torch.randn(32, raw.cfg.d_in)
    torch.testing.assert_close(
        _reconstruct(item.sae, x),
        _reconstruct(raw, x * scale) / scale,
        rtol=1e-4,
        atol=1e-4,
    )


def test_objects_are_exported_without_being_changed(
    letter_directions: torch.Tensor, tmp_path: Path
) -> None:
    sae = letters_sae(letter_directions)
    with torch.no_grad():
        sae.W_dec.data[0] *= 3.0
    before = {k: v.clone() for k, v in sae.state_dict().items()}
    other = letters_sae(letter_directions, seed=1)

    items = export_checkpoints([sae, other], tmp_path / "saes")

    for key, value in sae.state_dict().items():
        assert torch.equal(value, before[key])
    assert len({item.name for item in items}) == 2
    x = torch.randn(8, sae.cfg.d_in)
    torch.testing.assert_close(_reconstruct(items[0].sae, x), _reconstruct(sae, x))
    assert items[0].source == "<SAE object #0>"


def test_same_sae_twice_is_rejected(
    letter_directions: torch.Tensor, tmp_path: Path
) -> None:
    ckpt = freq_checkpoint(letter_directions, tmp_path / "ckpt")
    with pytest.raises(ValueError, match=r"checkpoints\[1\].*same SAE"):
        export_checkpoints([str(ckpt), ckpt], tmp_path / "saes")


def test_bad_checkpoints_are_rejected_by_name(
    letter_directions: torch.Tensor, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"checkpoints\[0\]=.*nowhere.*cfg.json"):
        export_checkpoints([tmp_path / "nowhere"], tmp_path / "saes")
    with pytest.raises(ValueError, match=r"checkpoints\[0\] must be .* got int"):
        export_checkpoints([3], tmp_path / "saes")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one SAE"):
        export_checkpoints([], tmp_path / "saes")
    sae = letters_sae(letter_directions)
    sae.cfg.metadata.hook_name = None  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"metadata\.hook_name"):
        export_checkpoints([sae], tmp_path / "saes")
