"""The ``sae-lens-freq`` dispatcher routes to one module per command."""

from __future__ import annotations

import importlib

import pytest

from sae_lens_freq import __version__
from sae_lens_freq.cli import COMMANDS, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out


def test_every_command_module_exists_and_has_main() -> None:
    for module_name, _ in COMMANDS.values():
        module = importlib.import_module(f"sae_lens_freq.cli.{module_name}")
        assert callable(module.main)


def test_unknown_command_names_the_allowed_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "'trian'" in err and "train" in err and "saebench" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_subcommand_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    assert exit_info.value.code == 0
    assert "--label" in capsys.readouterr().out
