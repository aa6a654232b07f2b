"""README's two opening commands are the ones users and CI actually run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^    (python3 -m venv .*)$", text, flags=re.M)[:2]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"^TEST_COMMAND='(.*)'$", ci, flags=re.M)
    assert match is not None, ".ci/run must define TEST_COMMAND"
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[1] == match.group(1)
    assert "pytest" in commands[1]


def test_main_job_command_runs_the_absorption_benchmark() -> None:
    main_job = _readme_commands()[0]
    assert main_job.endswith("sae-lens-freq bench absorption")
    # Both commands must work from a fresh clone: they create the venv themselves.
    assert main_job.startswith("python3 -m venv .venv && .venv/bin/pip install")
