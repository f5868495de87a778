"""Training throughput of the CPU LoRA recipe: padded batches vs padding-free packing, side by side.

    .venv/bin/python benchmarks/train_throughput.py [--repeat 1] [--batch 4]

Both modes train the embedded model on the same examples (the hand-written conversations in
tests/data, one example per assistant turn, so lengths vary as in real data) for one epoch, each in
its own process so peak memory is its own. Tokens/s counts real tokens only (no padding), so
the two figures measure the same work. Padded: batches of --batch examples padded to the longest.
Packed: best-fit-decreasing bins of max_length tokens, padding-free (block-diagonal attention).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "sft" / "smollm2-135m" / "cpu_lora.yaml"
DATA = ROOT / "tests" / "data" / "training_conversations.json"
TARGET = 1.0


def run_mode(mode: str, repeat: int, batch: int, output_dir: str) -> dict[str, float]:
    """One epoch in this process; returns real tokens, seconds, tokens/s and peak RSS."""
    sys.path.insert(0, str(ROOT))
    from transformers import AutoTokenizer
    from trl import SFTTrainer, get_peft_config

    from training.chat_templates import resolve_template
    from training.mixture import SourceConfig, build_mixture, expand_per_turn
    from training.sft import parse_args, resolve_model_path

    packed = mode == "packed"
    flags = [
        "--config",
        str(RECIPE),
        "--output_dir",
        output_dir,
        "--save_strategy",
        "no",
        "--logging_steps",
        "1000",
        "--num_train_epochs",
        "1",
        "--max_steps",
        "-1",
        "--warmup_steps",
        "0",
        "--merge_lora",
        "false",
        "--per_device_train_batch_size",
        "1" if packed else str(batch),
        "--packing",
        str(packed).lower(),
        "--packing_strategy",
        "bfd",
        "--max_length",
        "2048",
        "--shuffle_dataset",
        "false",
        "--dataset_num_proc",
        "1",
    ]
    script_args, training_args, model_args = parse_args(flags)
    model_path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.chat_template = resolve_template(script_args.template).read()
    dataset, _ = build_mixture([SourceConfig(path=str(DATA), weight=float(repeat))], seed=0)
    dataset = expand_per_turn(dataset)
    training_args.model_init_kwargs = {"dtype": model_args.dtype}
    trainer = SFTTrainer(
        model=model_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    prepared = trainer.train_dataset
    real_tokens = sum(len(ids) for ids in prepared["input_ids"])
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "examples": len(dataset),
        "rows": len(prepared),
        "steps": trainer.state.global_step,
        "real_tokens": real_tokens,
        "seconds": seconds,
        "tokens_per_s": real_tokens / seconds,
        "peak_rss_mib": peak_mib,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="how many times the examples are repeated")
    parser.add_argument("--batch", type=int, default=4, help="examples per padded batch")
    parser.add_argument("--mode", choices=["padded", "packed"], help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", default="/tmp/apigen-mt-train-throughput")
    args = parser.parse_args()
    if args.mode:  # child process: one mode, one JSON line
        print(json.dumps(run_mode(args.mode, args.repeat, args.batch, f"{args.output_dir}/{args.mode}")))
        return 0

    results = {}
    for mode in ("padded", "packed"):
        command = [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--repeat",
            str(args.repeat),
            "--batch",
            str(args.batch),
            "--output-dir",
            args.output_dir,
        ]
        child = subprocess.run(command, capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            print(f"the {mode} run failed (exit {child.returncode})", file=sys.stderr)
            return 1
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])

    keys = ["examples", "rows", "steps", "real_tokens", "seconds", "tokens_per_s", "peak_rss_mib"]
    print(f"{'':<16}{'padded':>14}{'packed':>14}")
    for key in keys:
        print(f"{key:<16}" + "".join(f"{results[m][key]:>14.1f}" for m in ("padded", "packed")))
    ratio = results["packed"]["tokens_per_s"] / results["padded"]["tokens_per_s"]
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"RESULT train_packed_vs_padded_tokens_per_s: {ratio:.2f} (target >= {TARGET}) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
