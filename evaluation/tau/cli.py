"""`apigen-mt eval tau`: the agent under test talks to a fixed simulated user on held-out tasks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from datagen.envs.base import Domain, Task
from datagen.redact import redact_config

SPLIT_WORDS = ("gold", "test", "train", "base", "all")


def select_tasks(domain: Domain, spec: str | None, limit: int | None) -> list[Task]:
    """Tasks by split name (τ² domains: train/test/base; native: gold/test = the held-out set) or by ids."""
    if spec is None or (spec in ("gold", "test") and not hasattr(domain, "tasks")):
        tasks = list(domain.gold_tasks)
    elif spec in SPLIT_WORDS:
        if not hasattr(domain, "tasks"):
            raise SystemExit(
                f"{domain.name} has only its held-out gold tasks; use --tasks gold or a list of ids"
            )
        tasks = list(domain.tasks(split=spec))  # type: ignore[attr-defined]
    else:
        pool = {
            t.id: t for t in (domain.tasks(split="all") if hasattr(domain, "tasks") else domain.gold_tasks)
        }  # type: ignore[attr-defined]
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in pool]
        if unknown:
            raise SystemExit(
                f"unknown task ids for {domain.name}: {unknown}; known ids start with {sorted(pool)[:5]}"
            )
        tasks = [pool[w] for w in wanted]
    if not tasks:
        raise SystemExit(f"{domain.name} has no tasks for --tasks {spec!r}")
    return tasks[:limit] if limit else tasks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apigen-mt eval tau", description=__doc__)
    p.add_argument("--env", required=True, help="domain name (retail, airline, bank, tau2-retail, ...)")
    p.add_argument(
        "--model", required=True, help="agent under test: 'embedded', a path or a served model name"
    )
    p.add_argument("--backend", choices=("vllm", "openai", "transformers"), default="vllm")
    p.add_argument("--format", dest="tool_format", default="auto", help="tool-call format of the agent model")
    p.add_argument("--base-url", action="append", default=[], help="openai backend: server URL (repeatable)")
    p.add_argument("--user-model", required=True, help="the simulated user's model (fixed and named)")
    p.add_argument(
        "--user-backend", choices=("vllm", "openai", "transformers"), default=None, help="default: --backend"
    )
    p.add_argument("--user-base-url", action="append", default=None, help="default: --base-url")
    p.add_argument("--user-best-of-n", type=int, default=1, help="Best-of-N for the user (default 1: off)")
    p.add_argument("--trials", type=int, default=4)
    p.add_argument(
        "--tasks", default=None, help="a split (gold/test/train/base/all) or comma-separated task ids"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N selected tasks")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--max-steps", type=int, default=30)
    p.add_argument("--max-tokens", type=int, default=512, help="agent's max new tokens per turn")
    p.add_argument("--user-max-tokens", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--resume", action="store_true", help="continue a run in --out")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    return p


def config_from_args(args: argparse.Namespace):
    from datagen.llm import ModelSpec
    from datagen.simulate.config import AgentConfig, UserConfig
    from evaluation.tau.config import TauConfig

    agent_spec = ModelSpec(
        model=args.model, backend=args.backend, tool_format=args.tool_format, base_urls=args.base_url
    )
    user_spec = ModelSpec(
        model=args.user_model,
        backend=args.user_backend or args.backend,
        base_urls=args.user_base_url if args.user_base_url is not None else args.base_url,
    )
    if user_spec.model_dump(exclude={"tool_format"}) == agent_spec.model_dump(exclude={"tool_format"}):
        user_spec = agent_spec  # one engine for both roles
    return TauConfig(
        agent=AgentConfig(model=agent_spec, max_tokens=args.max_tokens),
        user=UserConfig(model=user_spec, best_of_n=args.user_best_of_n, max_tokens=args.user_max_tokens),
        trials=args.trials,
        concurrency=args.concurrency,
        max_steps=args.max_steps,
        seed=args.seed,
    )


def _check_out_dir(out: Path, resume: bool, config_json: dict[str, Any]) -> None:
    saved = out / "config.json"
    if saved.exists():
        if not resume:
            raise SystemExit(
                f"{out} already holds a run; pass --resume to continue it or choose another --out"
            )
        if json.loads(saved.read_text()) != config_json:
            raise SystemExit(
                f"{out} was run with different settings (see {saved}); resume needs the same ones"
            )
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(config_json, indent=2))


async def _run(config, domain: Domain, tasks: list[Task], out: Path, quiet: bool) -> dict[str, Any]:
    from rich.progress import Progress

    from datagen.llm.pool import ModelPool
    from evaluation.tau.harness import TauHarness

    async with ModelPool() as pool:
        harness = TauHarness(config, domain, tasks, out, pool)
        with Progress(disable=quiet, transient=True) as progress:
            bar = progress.add_task("τ trials", total=len(tasks) * config.trials)
            return await harness.run(on_trial=lambda row: progress.advance(bar))


def main(argv: list[str]) -> int:
    from datagen.envs.registry import get_domain
    from evaluation.report.collect import TauResult
    from evaluation.report.plots import pass_k_png

    args = build_parser().parse_args(argv)
    domain = get_domain(args.env)
    tasks = select_tasks(domain, args.tasks, args.limit)
    config = config_from_args(args)
    config_json = redact_config(
        {**json.loads(config.model_dump_json()), "env": args.env, "tasks": [t.id for t in tasks]}
    )
    _check_out_dir(args.out, args.resume, config_json)
    summary = asyncio.run(_run(config, domain, tasks, args.out, quiet=args.json))
    (args.out / "pass_k.png").write_bytes(
        pass_k_png([TauResult(summary["agent"], summary["env"], args.out, summary)])
    )
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
        print(
            f"results: {args.out}/results.jsonl, per task: {args.out}/per_task.json, "
            f"summary: {args.out}/summary.json, curve: {args.out}/pass_k.png"
        )
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['env']}: agent {summary['agent']} vs user {summary['user']} — {summary['tasks']} tasks × {summary['trials']} trials"
    ]
    lines.append("k  pass^k   pass^k (state-changing tasks only)")
    for k, value in summary["pass_k"].items():
        other = summary["pass_k_state_changing_only"].get(k)
        lines.append(f"{k:<2} {value:.3f}    {'-' if other is None else f'{other:.3f}'}")
    lines.append(f"failure classes: {summary['failure_classes'] or 'none'}")
    if summary.get("user_error_tasks"):
        clean = ", ".join(f"pass^{k} {v:.3f}" for k, v in summary["pass_k_without_user_error_tasks"].items())
        lines.append(
            f"without the tasks the simulated user spoiled {summary['user_error_tasks']}: {clean or 'no tasks left'}"
        )
    if summary["noop_gold_tasks"]:
        lines.append(f"tasks whose gold end state is the start state: {summary['noop_gold_tasks']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
