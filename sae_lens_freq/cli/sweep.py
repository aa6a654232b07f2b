"""``sae-lens-freq sweep``: a grid of FreqSAE variants from one shared LLM forward pass."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sae-lens-freq sweep",
        description=(
            "Train every combination of the given beta, alpha and lambda values (and "
            "optionally a standard SAE per lambda) on one shared activation stream, "
            "with SAELens's multi-SAE runner. Each variant gets OUTPUT/<variant>/ "
            "(export, feature_freq, runner_cfg.json, metrics.jsonl) and, with "
            "--log-to-wandb, its own W&B run; `sae-lens-freq report OUTPUT/*/` "
            "compares them."
        ),
    )
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--model-path", help="local model folder (save_hooked_transformer)"
    )
    model.add_argument("--model-name", help="TransformerLens model name")
    p.add_argument("--hook-name", required=True, help="e.g. blocks.12.hook_resid_post")
    p.add_argument("--dataset-path", required=True, help="HF dataset or local folder")
    p.add_argument("--d-in", type=int, help="SAE input width (default: model d_model)")
    p.add_argument("--d-sae", type=int, required=True, help="SAE width")
    p.add_argument("--freq-coefficients", default="0.5", help="beta grid, e.g. 0,0.5,1")
    p.add_argument(
        "--freq-ema-decays", default="0.99", help="alpha grid, e.g. 0.9,0.99"
    )
    p.add_argument("--l1-coefficients", default="0.04", help="lambda grid")
    p.add_argument("--freq-warm-up-steps", type=int, default=1000)
    p.add_argument("--include-standard", action="store_true", help="add standard SAEs")
    p.add_argument("--training-tokens", type=int, default=2_000_000)
    p.add_argument("--train-batch-size-tokens", type=int, default=4096)
    p.add_argument("--context-size", type=int, default=128)
    p.add_argument("--store-batch-size-prompts", type=int, default=32)
    p.add_argument("--n-batches-in-buffer", type=int, default=20)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--output-path", default="sweep", help="one subfolder per variant")
    p.add_argument("--checkpoint-path", default="checkpoints")
    p.add_argument("--n-checkpoints", type=int, default=0)
    p.add_argument(
        "--resume-from-checkpoint", help="a <checkpoint_path>/<id>/<n> folder"
    )
    p.add_argument("--log-to-wandb", action="store_true")
    p.add_argument("--wandb-project", default="sae-lens-freq")
    p.add_argument("--wandb-log-frequency", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from sae_lens import LanguageModelSAERunnerConfig
    from sae_lens.config import LoggingConfig

    from sae_lens_freq import FreqWeightedTrainingSAEConfig
    from sae_lens_freq.cli.arguments import parse_numbers
    from sae_lens_freq.training.sweep import SweepConfig, SweepRunner

    try:
        model = None
        if args.model_path is not None:
            from sae_lens_freq.models import load_hooked_transformer

            model = load_hooked_transformer(args.model_path, device=args.device)
        d_in = args.d_in or (model.cfg.d_model if model is not None else None)
        if d_in is None:
            raise ValueError("d_in must be given (--d-in) with --model-name")
        base = LanguageModelSAERunnerConfig(
            sae=FreqWeightedTrainingSAEConfig(
                d_in=d_in, d_sae=args.d_sae, freq_warm_up_steps=args.freq_warm_up_steps
            ),
            model_name=str(args.model_name or args.model_path),
            hook_name=args.hook_name,
            dataset_path=args.dataset_path,
            context_size=args.context_size,
            training_tokens=args.training_tokens,
            train_batch_size_tokens=args.train_batch_size_tokens,
            store_batch_size_prompts=args.store_batch_size_prompts,
            n_batches_in_buffer=args.n_batches_in_buffer,
            lr=args.lr,
            output_path=args.output_path,
            checkpoint_path=args.checkpoint_path,
            n_checkpoints=args.n_checkpoints,
            resume_from_checkpoint=args.resume_from_checkpoint,
            logger=LoggingConfig(
                log_to_wandb=args.log_to_wandb,
                wandb_project=args.wandb_project,
                wandb_log_frequency=args.wandb_log_frequency,
            ),
            seed=args.seed,
            device=args.device,
            verbose=False,
        )
        sweep = SweepConfig(
            base=base,
            freq_coefficients=parse_numbers(
                args.freq_coefficients, "freq_coefficients"
            ),
            freq_ema_decays=parse_numbers(args.freq_ema_decays, "freq_ema_decays"),
            l1_coefficients=parse_numbers(args.l1_coefficients, "l1_coefficients"),
            include_standard=args.include_standard,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runner = SweepRunner(sweep, override_model=model)
    runner.run()
    for name, cfg in runner.variant_cfgs.items():
        print(f"{name}\t{cfg.output_path}")
    return 0
