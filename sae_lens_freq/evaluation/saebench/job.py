"""One SAEBench eval over the exported SAEs: what an adapter needs, and its results.

An adapter (``absorption.py``, ``core.py``, ...) turns an ``EvalJob`` into SAEBench's
own config, calls SAEBench's entry point for one SAE, and leaves either SAEBench's
result file or a "not enough signal" record behind. Everything here is shared by
the adapters: result paths, override validation and schema validation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sae_lens import SAE

from sae_lens_freq.evaluation.saebench.environment import working_directory

NOT_ENOUGH_SIGNAL = "not_enough_signal"
"""``status`` of a record written where an eval ran but had too little signal."""


class SaeBenchError(RuntimeError):
    """An eval failed where SAEBench would have swallowed the error or returned ``{}``."""


@dataclass
class EvalJob:
    """One eval (e.g. ``"core"``) over the run's SAEs, with everything SAEBench needs.

    Args:
        eval_name: Key of the eval (``absorption``, ``core``, ``scr``, ``tpp``,
            ``sparse_probing``).
        model_name: Name SAEBench loads the model by (served models:
            ``<name>@<fingerprint>``).
        device: Torch device for the model and SAEs.
        llm_dtype: Model dtype as SAEBench spells it (``"float32"``, ``"bfloat16"``).
        llm_batch_size: Prompts per model forward pass.
        results_dir: Root of the result files (``<out>/results``).
        artifacts_dir: This eval's caches (``<out>/artifacts/<model>/<eval>``).
        data_dir: Folder holding local copies of SAEBench's datasets, used as the
            working directory while they load (None: the current directory).
        overrides: Fields of SAEBench's eval config to change.
    """

    eval_name: str
    model_name: str
    device: str
    llm_dtype: str
    llm_batch_size: int
    results_dir: Path
    artifacts_dir: Path
    data_dir: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def eval_dir(self) -> Path:
        """Folder of this eval's result files (``<out>/results/<eval>``)."""
        return self.results_dir / self.eval_name

    def config_values(self, **fixed: Any) -> dict[str, Any]:
        """Values for SAEBench's eval config: the job's model settings, then the
        user's overrides, then what the adapter fixes (``model_name`` and ``fixed``)."""
        return {
            "llm_batch_size": self.llm_batch_size,
            "llm_dtype": self.llm_dtype,
            **self.overrides,
            "model_name": self.model_name,
            **fixed,
        }

    def datasets_directory(self) -> AbstractContextManager[Any]:
        """The working directory while SAEBench loads its datasets by hub path:
        ``data_dir`` (local copies under those paths) if given, else unchanged."""
        if self.data_dir is None:
            return nullcontext()
        return working_directory(self.data_dir)

    def result_path(self, sae_name: str) -> Path:
        """SAEBench's own file name for a custom SAE's result."""
        return self.eval_dir / f"{sae_name}_custom_sae_eval_results.json"

    def record_path(self, sae_name: str) -> Path:
        """Where a "not enough signal" record for ``sae_name`` goes."""
        return self.eval_dir / f"{sae_name}_custom_sae_{NOT_ENOUGH_SIGNAL}.json"


@dataclass(frozen=True)
class EvalAdapter:
    """How to run one SAEBench eval for one SAE.

    Args:
        name: Eval key.
        output_class: SAEBench's pydantic output class; result files validate
            against it.
        make_config: Build SAEBench's config from a job (validates overrides).
        run_one: Run SAEBench for one ``(name, SAE)``, writing its result file (or a
            "not enough signal" record); may raise ``SaeBenchError``.
        seed_of: The seed a config asks for.
        requested: The config as stored in result files, restricted to the fields
            a reusable result must match.
    """

    name: str
    output_class: type
    make_config: Callable[[EvalJob], Any]
    run_one: Callable[[EvalJob, Any, str, SAE], None]
    seed_of: Callable[[Any], int] = lambda config: int(config.random_seed)
    requested: Callable[[Any], dict[str, Any]] = lambda config: config_dict(config)


def build_config(config_class: type, eval_name: str, values: dict[str, Any]) -> Any:
    """``config_class(**values)``; an unknown or invalid field is a ValueError naming it."""
    allowed = (
        sorted(f.name for f in fields(config_class))
        if is_dataclass(config_class)
        else []
    )
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(
            f"{eval_name} has no setting {unknown[0]!r} (value {values[unknown[0]]!r}); "
            f"allowed: {', '.join(allowed)}"
        )
    try:
        return config_class(**values)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ValueError(
            f"{eval_name}.{where}={problem.get('input')!r} is invalid: {problem['msg']}"
        ) from err


def config_dict(config: Any) -> dict[str, Any]:
    """A config as the JSON a result file stores it (tuples become lists)."""
    return json.loads(json.dumps(asdict(config), default=str))


def reusable(path: Path, requested: dict[str, Any]) -> bool:
    """True when ``path`` holds a result of exactly the ``requested`` config."""
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text()).get("eval_config", {})
    except (OSError, json.JSONDecodeError):
        return False
    return all(stored.get(key) == value for key, value in requested.items())


def load_validated(path: Path, output_class: type) -> dict[str, Any]:
    """Read a result file and validate it against SAEBench's output class."""
    data = json.loads(path.read_text())
    try:
        TypeAdapter(output_class).validate_python(data)
    except ValidationError as err:
        raise SaeBenchError(
            f"{path} does not match SAEBench's {output_class.__name__} schema: {err}"
        ) from err
    return data


def load_record(path: Path) -> dict[str, Any]:
    """Read a "not enough signal" record."""
    record = json.loads(path.read_text())
    if record.get("status") != NOT_ENOUGH_SIGNAL:
        raise SaeBenchError(f"{path} is not a not-enough-signal record")
    return record


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a "not enough signal" record (``status`` set to ``NOT_ENOUGH_SIGNAL``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"status": NOT_ENOUGH_SIGNAL, **record}, indent=2))
