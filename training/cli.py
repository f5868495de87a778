"""`apigen-mt train [--method sft|dpo|grpo] --config NAME|PATH [--accelerate-config NAME|PATH] [OPTIONS...]`.

Runs ``accelerate launch -m training.<method>`` (the packaged entry point, so it works from a wheel
as from a checkout) on a recipe of that method given by name (``qwen2.5-7b/full``, see ``--list``)
or by path. Every option this command does not know goes to the entry point unchanged (TRL's
``SFTConfig``/``DPOConfig``/``GRPOConfig`` and ``ModelConfig`` options and ours, e.g.
``--output_dir``, ``--max_steps``, ``--dataset_path``). Nothing heavy is imported here: torch and
TRL load in the launched processes only.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

from training.recipe_files import find_recipe, recipe_names

METHODS = ("sft", "dpo", "grpo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apigen-mt train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # an unknown option is an SFT option, never an abbreviation of ours
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="sft",
        help="sft (training/sft.py), dpo (preference pairs, training/dpo.py) or grpo (RL in our "
        "environments, training/grpo.py) (default: %(default)s)",
    )
    parser.add_argument(
        "--config",
        help="recipe of the method: a packaged name such as qwen2.5-7b/full (see --list) or a path to a YAML file",
    )
    parser.add_argument(
        "--accelerate-config",
        default=None,
        help="accelerate config: a packaged name (cpu, ddp, zero2, zero3, zero3_multinode) or a path "
        "(default: accelerate's own default config)",
    )
    parser.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="processes to launch, overriding the accelerate config (default: the config's)",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the packaged SFT, DPO, GRPO and accelerate recipes and exit"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the accelerate command instead of running it"
    )
    return parser


def launch_command(
    config: str,
    accelerate_config: str | None,
    num_processes: int | None,
    sft_args: list[str],
    method: str = "sft",
) -> list[str]:
    # --quiet: a failing entry point has said what is wrong in one line; accelerate would add a
    # traceback of its own launcher (CalledProcessError) under it.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--quiet"]
    if accelerate_config:
        command += ["--config_file", str(find_recipe(accelerate_config, "accelerate"))]
    if num_processes is not None:
        command += ["--num_processes", str(num_processes)]
    return [*command, "-m", f"training.{method}", "--config", str(find_recipe(config, method)), *sft_args]


def main(argv: list[str]) -> int:
    parser = build_parser()
    args, sft_args = parser.parse_known_args(argv)
    if args.list:
        for kind in (*METHODS, "accelerate"):
            print(f"{kind}: {', '.join(recipe_names(kind))}")
        return 0
    if not args.config:
        parser.error("--config is required (a packaged recipe name, see --list, or a path)")
    try:
        command = launch_command(
            args.config, args.accelerate_config, args.num_processes, sft_args, method=args.method
        )
    except FileNotFoundError as exc:
        print(f"apigen-mt train: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(shlex.join(command))
        return 0
    env = {**os.environ, "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM", "false")}
    return subprocess.run(command, env=env, check=False).returncode
