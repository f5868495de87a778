"""`apigen-mt eval tau`: the agent under test talks to a fixed simulated user on held-out tasks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagen.cli_errors import UsageError, run_command
from datagen.cli_flags import add_quiet_flag, add_tool_format_flag, command_parser
from datagen.envs.base import Domain, Task
from datagen.llm.server_parsers import PARSE_MODES, set_parse_mode
from datagen.runner.executor import add_executor_flags, executor_overrides
from evaluation.tau.config import TauConfig

if TYPE_CHECKING:
    from datagen.rundir import TauRun

SPLIT_WORDS = ("gold", "test", "train", "base", "all")


def _all_tasks(domain: Domain) -> list[Task]:
    """Every task a domain has: the held-out gold of a native domain, every split of a τ² domain."""
    if not hasattr(domain, "tasks"):
        return list(domain.gold_tasks)
    seen: dict[str, Task] = {}
    for split in domain.splits:  # type: ignore[attr-defined]
        for task in domain.tasks(split=split):  # type: ignore[attr-defined]
            seen.setdefault(task.id, task)
    return list(seen.values())


def select_tasks(domain: Domain, spec: str | None, limit: int | None) -> list[Task]:
    """Tasks by split name (τ² domains: their splits, or all; native: gold/test = the held-out set)
    or by comma-separated ids."""
    has_splits = hasattr(domain, "tasks")
    if spec is None or (spec in ("gold", "test") and not has_splits):
        tasks = list(domain.gold_tasks)
    elif spec == "all":
        tasks = _all_tasks(domain)
    elif spec in SPLIT_WORDS or (has_splits and spec in domain.splits):  # type: ignore[attr-defined]
        if not has_splits:
            raise UsageError(
                f"--tasks {spec}: {domain.name} has only its held-out gold tasks; use --tasks gold or a list of ids"
            )
        if spec not in domain.splits:  # type: ignore[attr-defined]
            raise UsageError(
                f"--tasks {spec}: expected one of {domain.name}'s splits {sorted(domain.splits)}, all, or task ids"  # type: ignore[attr-defined]
            )
        tasks = list(domain.tasks(split=spec))  # type: ignore[attr-defined]
    else:
        pool = {t.id: t for t in _all_tasks(domain)}
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in pool]
        if unknown:
            raise UsageError(
                f"--tasks: unknown task ids for {domain.name}: {unknown[:5]}; expected a split "
                f"({', '.join(SPLIT_WORDS)}) or ids such as {sorted(pool)[:3]}"
            )
        tasks = [pool[w] for w in wanted]
    if not tasks:
        raise UsageError(f"--tasks {spec!r}: {domain.name} has no such tasks")
    return tasks[:limit] if limit else tasks


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "apigen-mt eval tau",
        __doc__,
        epilog="Flags override the recipe given with --config; without one, --env, --model and --user-model are needed.",
    )
    p.add_argument(
        "--config", type=Path, default=None, help="evaluation recipe, e.g. recipes/eval/tau/demo.yaml"
    )
    p.add_argument("--env", default=None, help="domain name (retail, airline, bank, tau2-retail, ...)")
    p.add_argument(
        "--model", default=None, help="agent under test: 'embedded', a path or a served model name"
    )
    p.add_argument(
        "--backend", choices=("vllm", "openai", "transformers"), default=None, help="default: vllm"
    )
    add_tool_format_flag(
        p,
        "tool-call format of the agent (default: the recipe's, else auto: the model directory's marker, else hermes)",
    )
    p.add_argument(
        "--base-url",
        action="append",
        default=None,
        help="openai backend: server URL; repeat for several servers (the recipe's base_urls)",
    )
    p.add_argument(
        "--parse",
        choices=PARSE_MODES,
        default=None,
        help="who reads the agent's tool calls: 'toolkit' (our parser for the agent's --tool-format reads "
        "the reply text) or 'server' (the server's --tool-call-parser does, as for a deployed model; "
        "needs --backend openai; the same as tool_format: openai). Default: as the recipe says",
    )
    p.add_argument("--user-model", default=None, help="the simulated user's model (fixed and named)")
    p.add_argument(
        "--user-mode",
        choices=("model", "scripted"),
        default=None,
        help="'scripted': the rule-based stand-in user (no model; reveals what each task's instruction "
        "states; for machines without a capable user model). Default: model",
    )
    p.add_argument(
        "--user-backend", choices=("vllm", "openai", "transformers"), default=None, help="default: --backend"
    )
    p.add_argument(
        "--user-base-url",
        action="append",
        default=None,
        help="the user's server URL, repeatable (default: --base-url)",
    )
    p.add_argument("--user-best-of-n", type=int, default=None, help="Best-of-N for the user (default 1: off)")
    p.add_argument("--trials", type=int, default=None, help="trials per task (default 4)")
    p.add_argument(
        "--tasks", default=None, help="a split (gold/test/train/base/all) or comma-separated task ids"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N selected tasks")
    p.add_argument("--concurrency", type=int, default=None, help="trials in flight at once (default 64)")
    p.add_argument("--max-steps", type=int, default=None, help="steps per dialogue (default 30)")
    p.add_argument(
        "--max-tokens", type=int, default=None, help="agent's max new tokens per turn (default 512)"
    )
    p.add_argument(
        "--user-max-tokens", type=int, default=None, help="user's max new tokens per turn (default 200)"
    )
    p.add_argument(
        "--seed", type=int, default=None, help="run seed every episode seed derives from (default 0)"
    )
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue a run in --out")
    p.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout (implies --quiet)"
    )
    add_quiet_flag(p)
    add_executor_flags(p)
    return p


def recipe_data(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The recipe as plain data with the flags applied over it, and where it came from."""
    from datagen.recipe import read_recipe_data, set_override

    if args.config is None:
        missing = [
            flag
            for flag, value in (
                ("--env", args.env),
                ("--model", args.model),
                ("--user-model", "scripted" if args.user_mode == "scripted" else args.user_model),
            )
            if value is None
        ]
        if missing:
            raise UsageError(f"expected --config RECIPE or {', '.join(missing)}; found neither")
        data: dict[str, Any] = {"models": {}, "agent": {"model": "agent"}, "user": {"model": "user"}}
        source = "the command line"
    else:
        data = read_recipe_data(args.config)
        source = str(args.config)
    agent_alias = str(data.setdefault("agent", {}).setdefault("model", "agent"))
    user_alias = str(data.setdefault("user", {}).setdefault("model", "user"))
    models = data.setdefault("models", {})
    agent_flags = {
        "model": args.model,
        "backend": args.backend,
        "tool_format": args.tool_format,
        "base_urls": args.base_url,
    }
    user_flags = {
        "model": args.user_model,
        "backend": args.user_backend or args.backend,
        "base_urls": args.user_base_url if args.user_base_url is not None else args.base_url,
    }
    for alias, flags in ((agent_alias, agent_flags), (user_alias, user_flags)):
        if any(v is not None for v in flags.values()):
            spec = models.setdefault(alias, {})
            spec.update({k: v for k, v in flags.items() if v is not None})
    set_parse_mode(args.parse, models.setdefault(agent_alias, {}))
    # The same model for both sides is one engine: the user names the agent's alias.
    agent_spec, user_spec = models.get(agent_alias, {}), models.get(user_alias)
    if user_alias != agent_alias and isinstance(user_spec, dict) and _same_engine(agent_spec, user_spec):
        data["user"]["model"] = agent_alias
        if not any(role.get("model") == user_alias for role in (data["agent"],)):
            models.pop(user_alias)
    for dotted, value in {
        "env": args.env, "tasks": args.tasks, "limit": args.limit, "trials": args.trials,
        "concurrency": args.concurrency, "max_steps": args.max_steps, "seed": args.seed,
        "agent.max_tokens": args.max_tokens, "user.max_tokens": args.user_max_tokens,
        "user.best_of_n": args.user_best_of_n, "user.mode": args.user_mode, **executor_overrides(args.executor, args.workers),
    }.items():  # fmt: skip
        if value is not None:
            set_override(data, dotted, value)
    return data, source


def _same_engine(agent: dict[str, Any], user: dict[str, Any]) -> bool:
    from datagen.llm import ModelSpec

    try:
        a, u = ModelSpec.model_validate(agent), ModelSpec.model_validate(user)
    except ValueError:
        return False  # the recipe's validation reports it
    return a.model_dump(exclude={"tool_format", "name"}) == u.model_dump(exclude={"tool_format", "name"})


def _check_out_dir(run: TauRun, resume: bool, config_json: dict[str, Any]) -> None:
    from datagen.redact import redact_config

    saved = run.read_recipe()
    if saved is not None:
        if not resume:
            raise UsageError(
                f"{run.root} already holds a run; pass --resume to continue it or choose another --out"
            )
        if _results_settings(saved) != _results_settings(redact_config(config_json)):
            raise UsageError(
                f"{run.root} was run with different settings (see {run.recipe}); resume needs the same ones"
            )
    elif run.results.exists() and not resume:
        raise UsageError(
            f"{run.root} already holds results; pass --resume to continue it or choose another --out"
        )
    run.root.mkdir(parents=True, exist_ok=True)
    run.recipe.write_text(json.dumps(redact_config(config_json), indent=2))


def _results_settings(recipe: dict[str, Any]) -> dict[str, Any]:
    """The settings a run's rows depend on: all but where the jobs ran (``executor``)."""
    return {key: value for key, value in recipe.items() if key != "executor"}


async def _run(
    config: TauConfig, domain: Domain, tasks: list[Task], run: TauRun, quiet: bool
) -> dict[str, Any]:
    from datagen.llm.pool import ModelPool
    from datagen.runner.executor import open_executor
    from datagen.runner.progress import ProgressLine
    from evaluation.tau.harness import TauHarness

    total = len(tasks) * config.trials
    seen = {"done": 0, "ok": 0}
    display = ProgressLine(
        lambda: f"[tau] {seen['done']}/{total} trials, {seen['ok']} successful", enabled=not quiet
    )

    def on_trial(row: dict[str, Any]) -> None:
        seen["done"] += 1
        seen["ok"] += bool(row.get("success"))
        display.update()

    async with (
        ModelPool(config.models) as pool,
        open_executor(config.executor, config.used_specs()) as executor,
    ):
        summary = await TauHarness(config, domain, tasks, run, pool, executor).run(on_trial=on_trial)
    display.finish()
    return summary


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return run_command("eval tau", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from datagen.envs.registry import get_domain
    from datagen.recipe import validate_recipe
    from datagen.rundir import TauRun
    from evaluation.report.collect import TauResult
    from evaluation.report.plots import pass_k_png

    data, source = recipe_data(args)
    config = validate_recipe(data, TauConfig, source)
    domain = get_domain(config.env)
    tasks = select_tasks(domain, config.tasks, config.limit)
    run = TauRun(args.out)
    config_json = {**json.loads(config.model_dump_json()), "task_ids": [t.id for t in tasks]}
    _check_out_dir(run, args.resume, config_json)
    summary = asyncio.run(_run(config, domain, tasks, run, quiet=args.quiet or args.json))
    run.curve.write_bytes(pass_k_png([TauResult(summary["agent"], summary["env"], run.root, summary)]))
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
        print(f"results: {run.results}, per task: {run.per_task}, summary: {run.summary}, curve: {run.curve}")
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    read_by = summary.get("tool_calls_read_by")
    lines = [
        f"{summary['env']}: agent {summary['agent']} vs user {summary['user']} — {summary['tasks']} tasks × {summary['trials']} trials"
        + (f"; tool calls read by the {read_by}'s parser" if read_by else "")
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
