"""Fixtures for the SAEBench tests; they live in ``saebench_fixtures`` (a unique
module name, so test files can import its helpers next to other ``conftest``s)."""

from saebench_fixtures import (  # noqa: F401  (pytest collects imported fixtures)
    absorption_run,
    letter_directions,
    letters_model,
    letters_tokenizer_dir,
    probe_data_dir,
)
