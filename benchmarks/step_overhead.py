"""Per-step cost of FreqSAE against SAELens's ``standard`` SAE, and against matmul.

Both SAEs train through SAELens's own ``SAETrainer.step`` (same Adam, grad-norm
clip, LR and coefficient schedulers, firing statistics), on the same batches and
the same initial weights. Repeats interleave the two (A/B, then B/A) so machine
drift hits both alike; the script prints the median per-step time, the ratio
FreqSAE / standard (target <= 1.03) and each step's achieved FLOP/s next to that of
plain ``torch.matmul`` over the step's six GEMMs at the same shapes.

FLOP count per step: ``12 * B * d_in * d_sae``. The forward pass has two GEMMs
(encoder and decoder, ``2*B*d_in*d_sae`` each); the backward pass has two per GEMM
(input and weight gradient; the encoder's input gradient is needed because
``b_dec`` is subtracted from the input), i.e. twice the forward. Elementwise work
(ReLU, the loss, Adam) is not counted, so the fraction of matmul speed measures
everything that is not GEMM.

On a CPU the full sizes are slow (~2.4 s per step at 768 -> 6144, batch 4096, one
thread), so ``--scale`` (default 16 on CPU, 1 on CUDA) divides ``d_sae`` only. The
GEMMs cost ``B * d_in * d_sae``; FreqSAE's extra work is elementwise over
``B * d_sae`` (loss, firing rate) and over ``d_sae * d_in`` (decoder projection), so
its cost relative to the GEMMs is ``~1/d_in`` and ``~1/B``: keeping ``d_in`` and the
batch keeps the overhead ratio while cutting the time. The sizes actually run are
printed.

    python benchmarks/step_overhead.py                      # CPU, d_sae / 16
    python benchmarks/step_overhead.py --device cuda --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from sae_lens.config import SAETrainerConfig
from sae_lens.saes.sae import TrainingSAE
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
from sae_lens.training.sae_trainer import SAETrainer

from sae_lens_freq import FreqWeightedTrainingSAE, FreqWeightedTrainingSAEConfig

DEFAULT_SIZES = "768x6144,2304x16384"


@dataclass(frozen=True)
class Size:
    d_in: int
    d_sae: int

    @classmethod
    def parse(cls, text: str) -> Size:
        try:
            d_in, d_sae = (int(part) for part in text.lower().split("x"))
        except ValueError:
            raise ValueError(
                f"--sizes entry {text!r} must look like D_INxD_SAE, e.g. 768x6144"
            ) from None
        if d_in < 1 or d_sae < 1:
            raise ValueError(f"--sizes entry {text!r} must have d_in, d_sae >= 1")
        return cls(d_in, d_sae)


def step_flops(batch: int, size: Size) -> int:
    return 12 * batch * size.d_in * size.d_sae


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_trainer(
    sae: TrainingSAE[Any], batch: int, n_steps: int
) -> SAETrainer[Any, Any]:
    cfg = SAETrainerConfig(
        total_training_samples=n_steps * batch,
        train_batch_size_samples=batch,
        lr=3e-4,
        lr_end=3e-4,
        device=str(sae.device),
    )
    return SAETrainer(cfg=cfg, sae=sae, data_provider=iter([]))


def build_pair(
    size: Size, batch: int, device: torch.device, n_steps: int
) -> dict[str, SAETrainer[Any, Any]]:
    """FreqSAE and standard SAE with identical initial weights, each with a trainer."""
    torch.manual_seed(0)
    freq = FreqWeightedTrainingSAE(
        FreqWeightedTrainingSAEConfig(
            d_in=size.d_in,
            d_sae=size.d_sae,
            device=str(device),
            freq_warm_up_steps=0,  # beta > 0 from the start; the cost is the same
        )
    )
    std = StandardTrainingSAE(
        StandardTrainingSAEConfig(
            d_in=size.d_in, d_sae=size.d_sae, device=str(device), l1_coefficient=0.04
        )
    )
    std.load_state_dict(
        {k: v for k, v in freq.state_dict().items() if k != "feature_freq"}
    )
    return {
        "standard": build_trainer(std, batch, n_steps),
        "freq_weighted": build_trainer(freq, batch, n_steps),
    }


CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    # CPU seconds of this process (all its threads): on a shared CPU machine this
    # leaves out the time other processes hold the cores.
    "cpu": time.process_time,
}


def time_steps(
    trainer: SAETrainer[Any, Any],
    batches: list[torch.Tensor],
    n_steps: int,
    device: torch.device,
    clock: Callable[[], float],
) -> float:
    """Mean seconds per ``trainer.step`` over ``n_steps`` steps."""
    _sync(device)
    start = clock()
    for i in range(n_steps):
        trainer.step(batches[i % len(batches)])
        trainer.n_training_steps += 1
    _sync(device)
    return (clock() - start) / n_steps


def matmul_seconds(
    size: Size,
    batch: int,
    device: torch.device,
    repeats: int,
    clock: Callable[[], float],
) -> float:
    """Median time of the step's six GEMMs with plain ``torch.matmul``."""
    b, d, f = batch, size.d_in, size.d_sae
    x = torch.randn(b, d, device=device)
    w_enc = torch.randn(d, f, device=device) / d**0.5
    w_dec = torch.randn(f, d, device=device) / f**0.5
    h = torch.randn(b, f, device=device)
    d_out = torch.randn(b, d, device=device)
    d_pre = torch.randn(b, f, device=device)

    def gemms() -> None:
        torch.matmul(x, w_enc)  # encoder forward
        torch.matmul(h, w_dec)  # decoder forward
        torch.matmul(d_out, w_dec.T)  # d h
        torch.matmul(h.T, d_out)  # d W_dec
        torch.matmul(d_pre, w_enc.T)  # d x (for b_dec)
        torch.matmul(x.T, d_pre)  # d W_enc

    gemms()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = clock()
        gemms()
        _sync(device)
        times.append(clock() - start)
    return statistics.median(times)


def run_size(
    size: Size,
    batch: int,
    repeats: int,
    steps_per_repeat: int,
    warmup: int,
    device: torch.device,
    clock: Callable[[], float],
) -> dict[str, float]:
    n_total = warmup + repeats * steps_per_repeat
    trainers = build_pair(size, batch, device, n_total)
    gen = torch.Generator(device="cpu").manual_seed(1)
    batches = [
        torch.randn(batch, size.d_in, generator=gen).to(device)
        for _ in range(min(4, steps_per_repeat))
    ]
    for trainer in trainers.values():
        time_steps(trainer, batches, warmup, device, clock)

    per_step: dict[str, list[float]] = {name: [] for name in trainers}
    order = list(trainers)
    for r in range(repeats):
        for name in order if r % 2 == 0 else reversed(order):
            per_step[name].append(
                time_steps(trainers[name], batches, steps_per_repeat, device, clock)
            )
    result = {name: statistics.median(t) for name, t in per_step.items()}
    result["matmul"] = matmul_seconds(size, batch, device, max(repeats, 5), clock)
    # Paired ratios (same repeat) are robust to slow drift on a shared machine.
    ratios = [
        f / s
        for f, s in zip(per_step["freq_weighted"], per_step["standard"], strict=True)
    ]
    result["ratio_of_medians"] = result["freq_weighted"] / result["standard"]
    result["median_paired_ratio"] = statistics.median(ratios)
    return result


def profile_step(size: Size, batch: int, device: torch.device) -> None:
    """Print the top operators of one step of each architecture."""
    from torch.profiler import ProfilerActivity, profile

    trainers = build_pair(size, batch, device, 8)
    x = torch.randn(batch, size.d_in, device=device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    sort_key = (
        "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    )
    for name, trainer in trainers.items():
        trainer.step(x)
        with profile(activities=activities) as prof:
            for _ in range(3):
                trainer.step(x)
            _sync(device)
        print(f"\n== profile: {name} ({size.d_in}x{size.d_sae}, batch {batch}) ==")
        print(prof.key_averages().table(sort_by=sort_key, row_limit=15))


def _fmt_flops(flops_per_s: float) -> str:
    return f"{flops_per_s / 1e9:8.1f} GFLOP/s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="comma-separated D_INxD_SAE before --scale (default %(default)s)",
    )
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        help="divide d_sae by this (default: 16 on CPU, 1 on CUDA)",
    )
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--steps-per-repeat", type=int, default=2)
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default=None,
        help="wall time, or this process's CPU time (default: cpu on CPU, wall on CUDA)",
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1)"
    )
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile one step of each"
    )
    parser.add_argument(
        "--fail-above",
        type=float,
        default=None,
        help="exit 1 if the FreqSAE / standard ratio exceeds this",
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    scale = (
        args.scale if args.scale is not None else (1 if device.type == "cuda" else 16)
    )
    for name, value in (
        ("--batch", args.batch),
        ("--scale", scale),
        ("--repeats", args.repeats),
        ("--steps-per-repeat", args.steps_per_repeat),
        ("--threads", args.threads),
    ):
        if value < 1:
            parser.error(f"{name} must be >= 1, got {value}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    torch.set_num_threads(args.threads)
    clock_name = args.clock or ("wall" if device.type == "cuda" else "cpu")
    clock = CLOCKS[clock_name]
    requested = [Size.parse(s) for s in args.sizes.split(",") if s.strip()]
    sizes = [Size(s.d_in, max(1, s.d_sae // scale)) for s in requested]
    batch = args.batch

    print(
        f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
        f"dtype=float32 scale={scale} (d_sae / {scale}) batch={batch} "
        f"repeats={args.repeats} x {args.steps_per_repeat} steps, interleaved, "
        f"clock={clock_name}"
    )
    print(
        "path: SAETrainer.step (Adam, clip_grad_norm_ 1.0, schedulers); "
        "FLOPs/step = 12*B*d_in*d_sae"
    )
    worst = 0.0
    for req, size in zip(requested, sizes, strict=True):
        res = run_size(
            size, batch, args.repeats, args.steps_per_repeat, args.warmup, device, clock
        )
        flops = step_flops(batch, size)
        print(
            f"\n{size.d_in}x{size.d_sae} batch {batch}"
            f" (requested {req.d_in}x{req.d_sae})"
        )
        rows: list[tuple[str, float]] = [
            ("standard", res["standard"]),
            ("freq_weighted", res["freq_weighted"]),
            ("matmul x6", res["matmul"]),
        ]
        for label, seconds in rows:
            frac = res["matmul"] / seconds
            print(
                f"  {label:<14}{seconds * 1e3:10.2f} ms/step  "
                f"{_fmt_flops(flops / seconds)}  ({frac:6.1%} of matmul)"
            )
        print(
            f"  ratio freq_weighted/standard: {res['ratio_of_medians']:.4f} "
            f"(median of paired ratios {res['median_paired_ratio']:.4f}; "
            "target <= 1.03)"
        )
        worst = max(worst, res["median_paired_ratio"])
    if args.profile:
        profile_step(sizes[0], batch, device)
    if args.fail_above is not None and worst > args.fail_above:
        raise SystemExit(f"ratio {worst:.4f} > {args.fail_above}")


if __name__ == "__main__":
    main()
