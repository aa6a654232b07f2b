"""Orchestration: calibrate and train every (contender, seed, target L0), measure, report.

Seed ``seeds[0]`` of each (contender, target) is calibrated first, from
``l1_coefficient_guess`` (or ``k = target``) at the first target and from the
previous target's calibrated knob after that; the other seeds start from its
calibrated knob, usually hitting the target in one run. Runs go to ``workers``
processes (one torch thread each); ``DIR/results.json``, ``DIR/results.md`` and the
PNG plots are written when all are done.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import platform
from collections import deque
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE
from sae_lens.synthetic import feature_uniqueness, mean_correlation_coefficient
from tqdm.auto import tqdm

from sae_lens_freq.evaluation.absorption import metrics
from sae_lens_freq.evaluation.absorption.calibrate import calibrate
from sae_lens_freq.evaluation.absorption.config import (
    AbsorptionBenchConfig,
    SyntheticDataConfig,
)
from sae_lens_freq.evaluation.absorption.contenders import (
    Contender,
    Timer,
    contenders_for,
    train_sae,
)
from sae_lens_freq.evaluation.absorption.data import GroundTruth, build_ground_truth
from sae_lens_freq.evaluation.absorption.report import FAIRNESS, write_markdown

Record = dict[str, Any]


@functools.lru_cache(maxsize=2)
def ground_truth(data: SyntheticDataConfig) -> GroundTruth:
    return build_ground_truth(data)


@functools.lru_cache(maxsize=2)
def eval_set(
    data: SyntheticDataConfig, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out (feature acts, activations) every run is measured on."""
    return ground_truth(data).sample(n, seed)


@torch.no_grad()
def evaluate(sae: SAE[Any], cfg: AbsorptionBenchConfig) -> dict[str, float | int]:
    """Every metric of one trained SAE on the held-out set."""
    truth = ground_truth(cfg.data)
    feature_acts, x = eval_set(cfg.data, cfg.eval_samples, cfg.eval_seed)
    sae.eval()
    latents = sae.encode(x)
    decoder = sae.W_dec.detach()
    stats = metrics.absorption_stats(
        latents,
        feature_acts,
        decoder,
        truth.directions,
        truth.hierarchy,
        cfg.cos_threshold,
    )
    return {
        "l0": metrics.mean_l0(latents),
        **asdict(stats),
        "child_parent_cosine": metrics.child_parent_cosine(
            decoder, truth.directions, truth.hierarchy
        ),
        "mcc": mean_correlation_coefficient(decoder, truth.directions),
        "uniqueness": feature_uniqueness(decoder, truth.directions),
        "explained_variance": metrics.explained_variance(x, sae.decode(latents)),
        "dead_latents": metrics.dead_latents(latents),
    }


def run_point(
    cfg: AbsorptionBenchConfig,
    contender: Contender,
    seed: int,
    target_l0: float,
    start_knob: float,
) -> Record:
    """Calibrate the contender's knob to ``target_l0`` and train one table entry."""
    torch.set_num_threads(1)
    timer = Timer()

    def run(knob: float) -> tuple[float, dict[str, float | int]]:
        sae = train_sae(cfg, ground_truth(cfg.data), contender, seed, knob)
        measured = evaluate(sae, cfg)
        return float(measured["l0"]), measured

    l1 = contender.knob == "l1_coefficient"
    cal = calibrate(
        run,
        target_l0,
        start_knob,
        slope=contender.slope_prior,
        tolerance=cfg.l0_tolerance,
        max_runs=cfg.max_calibration_runs,
        knob_range=(1e-5, 1e3) if l1 else (0.5, float(cfg.width)),
        integer=contender.integer_knob,
    )
    knob, measured, trace = cal.knob, cal.result, cal.trace
    rel_error = float(measured["l0"]) / target_l0 - 1
    return {
        "architecture": contender.architecture,
        "contender": contender.label,
        "freq_coefficient": contender.freq_coefficient,
        "seed": seed,
        "target_l0": target_l0,
        "knob": contender.knob,
        "knob_value": knob,
        **measured,
        "l0_rel_error": rel_error,
        "l0_within_tolerance": abs(rel_error) <= cfg.l0_tolerance,
        "calibration_runs": len(trace),
        "calibration_trace": [list(p) for p in trace],
        "d_sae": cfg.width,
        "steps": cfg.steps,
        "run_seconds": timer.seconds,
    }


def run_benchmark(
    cfg: AbsorptionBenchConfig,
    out_dir: str | Path,
    command: str = "",
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> list[Record]:
    """Run the whole grid; write results.json, results.md and plots into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wall = Timer()
    contenders = contenders_for(cfg)
    first, rest = cfg.seeds[0], cfg.seeds[1:]
    total = len(contenders) * len(cfg.seeds) * len(cfg.target_l0s)
    records: list[Record] = []
    bar = tqdm(
        total=total, desc="absorption bench (contender x seed)", disable=not progress
    )
    # Task: (contender, seed, target index, start knob). A first seed's result
    # starts the other seeds at its target and the first seed at the next target.
    targets = cfg.target_l0s
    queue: deque[tuple[Contender, int, int, float]] = deque(
        (c, first, 0, c.start_knob(targets[0], cfg.l1_coefficient_guess))
        for c in contenders
    )
    with _executor(cfg.workers) as pool:
        pending: dict[Future[Record], tuple[Contender, int, int, float]] = {}
        while queue or pending:
            while queue and len(pending) < cfg.workers:
                task = queue.popleft()
                c, seed, ti, knob = task
                pending[pool.submit(run_point, cfg, c, seed, targets[ti], knob)] = task
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                contender, seed, ti, _ = pending.pop(fut)
                record = fut.result()
                records.append(record)
                bar.set_postfix_str(f"{record['contender']} seed {record['seed']}")
                bar.update(1)
                if seed != first:
                    continue
                knob = record["knob_value"]
                queue.extendleft((contender, s, ti, knob) for s in reversed(rest))
                if ti + 1 < len(targets):
                    previous = (targets[ti], knob)
                    nxt = contender.start_knob(
                        targets[ti + 1], cfg.l1_coefficient_guess, previous
                    )
                    queue.append((contender, first, ti + 1, nxt))
    bar.close()
    order = {c.label: i for i, c in enumerate(contenders)}
    records.sort(key=lambda r: (r["target_l0"], order[r["contender"]], r["seed"]))
    shared = {
        "config": cfg.to_dict(),
        "versions": package_versions(),
        "bench_wall_seconds": wall.seconds,
        "fairness": FAIRNESS,
        "command": command,
    }
    records = [{**r, **shared} for r in records]
    (out / "results.json").write_text(json.dumps(_json_safe(records), indent=2) + "\n")
    table = write_markdown(records, cfg, out / "results.md", command, wall.seconds)
    from sae_lens_freq.evaluation.absorption.plots import write_plots

    write_plots(records, out)
    echo(table)
    return records


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("sae-lens", "sae-lens-freq", "torch"):
        try:
            found[dist.replace("-", "_")] = version(dist)
        except PackageNotFoundError:
            found[dist.replace("-", "_")] = "not installed"
    return found


class _InlineExecutor(Executor):
    """Runs each task at submission, in this process (``workers == 1``)."""

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as err:
            fut.set_exception(err)
        return fut


def _executor(workers: int) -> Executor:
    if workers == 1:
        return _InlineExecutor()
    # spawn: a fresh interpreter per worker, safe with torch's thread pools.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
    )


def _init_worker() -> None:
    torch.set_num_threads(1)
    import sae_lens_freq  # noqa: F401  (installs the FreqSAE unit-norm optimiser hooks)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
