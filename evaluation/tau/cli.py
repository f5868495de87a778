"""`apigen-mt eval tau`: the agent under test talks to a fixed simulated user on held-out tasks."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from apigen_rules.errors import UsageError
from datagen.cli_errors import run_command
from datagen.cli_flags import add_executor_flags, command_parser, executor_overrides
from datagen.envs.base import Domain, Task
from evaluation import command
from evaluation.parse_mode import PARSE_MODES, set_parse_mode
from evaluation.tau.config import TauConfig
from evaluation.tau.summary import format_summary

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
        epilog="Flags override the recipe given with --config; without one, --env, --model and --user-model "
        "(or --user-mode scripted) are needed.",
    )
    command.add_recipe_flag(p, "recipes/eval/tau/demo.yaml")
    p.add_argument("--env", default=None, help="domain name (retail, airline, bank, tau2-retail, ...)")
    command.add_model_flags(
        p,
        "agent under test: 'embedded', a path or a served model name",
        "tool-call format of the agent (default: the recipe's, else auto: the model directory's marker, else hermes)",
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
    p.add_argument("--user-backend", choices=command.BACKENDS, default=None, help="default: --backend")
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
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run the whole evaluation N times (repeat r in OUT/repeat-r with run seed seed+r-1) and "
        "report the run-to-run spread of pass^k beside each run's interval (default 1)",
    )
    command.add_output_flags(p, "run directory")
    add_executor_flags(p)
    return p


def recipe_data(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The recipe as plain data with the flags applied over it, and where it came from."""
    user_flags = {
        "model": args.user_model,
        "backend": args.user_backend or args.backend,
        "base_urls": args.user_base_url if args.user_base_url is not None else args.base_url,
    }
    if args.user_mode == "scripted":  # no model plays the user: the agent's flags are not its
        user_flags = {"model": args.user_model, "backend": args.user_backend, "base_urls": args.user_base_url}
    data, source = command.recipe_with_flags(
        args.config,
        needed={
            "--env": args.env, "--model": args.model,
            "--user-model": "scripted" if args.user_mode == "scripted" else args.user_model,
        },
        roles={"agent": command.model_flags(args), "user": user_flags},
        overrides={
            "env": args.env, "tasks": args.tasks, "limit": args.limit, "trials": args.trials,
            "concurrency": args.concurrency, "max_steps": args.max_steps, "seed": args.seed,
            "agent.max_tokens": args.max_tokens, "user.max_tokens": args.user_max_tokens,
            "user.best_of_n": args.user_best_of_n, "user.mode": args.user_mode,
            **executor_overrides(args.executor, args.workers),
        },
    )  # fmt: skip
    agent_alias, user_alias = str(data["agent"]["model"]), str(data["user"]["model"])
    models = data.setdefault("models", {})
    set_parse_mode(args.parse, models.setdefault(agent_alias, {}))
    # The same model for both sides is one engine: the user names the agent's alias.
    agent_spec, user_spec = models.get(agent_alias, {}), models.get(user_alias)
    if user_alias != agent_alias and isinstance(user_spec, dict) and _same_engine(agent_spec, user_spec):
        data["user"]["model"] = agent_alias
        models.pop(user_alias)
    return data, source


def _same_engine(agent: dict[str, Any], user: dict[str, Any]) -> bool:
    from datagen.llm import ModelSpec

    try:
        a, u = ModelSpec.model_validate(agent), ModelSpec.model_validate(user)
    except ValueError:
        return False  # the recipe's validation reports it
    return a.model_dump(exclude={"tool_format", "name"}) == u.model_dump(exclude={"tool_format", "name"})


async def _run(
    plays: list[tuple[TauConfig, TauRun]], domain: Domain, tasks: list[Task], quiet: bool
) -> list[dict[str, Any]]:
    """Each (recipe, run directory) in turn on one model pool: the repeats share the engines."""
    from datagen.llm.pool import ModelPool
    from datagen.runner.executor import open_executor
    from evaluation.tau.harness import TauHarness

    config = plays[0][0]
    total = len(tasks) * config.trials * len(plays)
    progress = command.RunProgress("tau", "trials", total, tallies={"success": "successful"}, quiet=quiet)
    summaries = []
    async with (
        ModelPool(config.models) as pool,
        open_executor(config.executor, config.used_specs()) as executor,
    ):
        for play_config, run in plays:
            harness = TauHarness(play_config, domain, tasks, run, pool, executor)
            summaries.append(await harness.run(on_trial=progress.row_done))
    progress.finish()
    return summaries


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return run_command("eval tau", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from datagen.envs.registry import get_domain
    from datagen.recipe import validate_recipe
    from datagen.rundir import TauRun
    from evaluation.report.collect import TauResult
    from evaluation.report.plots import pass_k_png
    from evaluation.tau.repeats import repeat_config

    if args.repeats < 1:
        raise UsageError(f"--repeats: expected a number of runs of at least 1, found {args.repeats}")
    data, source = recipe_data(args)
    config = validate_recipe(data, TauConfig, source)
    domain = get_domain(config.env)
    tasks = select_tasks(domain, config.tasks, config.limit)
    root = command.output_run(TauRun, args.out)
    plays = (
        [(config, root)]
        if args.repeats == 1
        else [(repeat_config(config, r), root.repeat(r)) for r in range(1, args.repeats + 1)]
    )
    for play_config, run in plays:
        run.open_for_writing(
            command.settings_of(play_config, task_ids=[t.id for t in tasks]), resume=args.resume
        )
    summaries = asyncio.run(_run(plays, domain, tasks, quiet=command.is_quiet(args)))
    for (_, run), summary in zip(plays, summaries, strict=True):
        run.curve.write_bytes(pass_k_png([TauResult(summary["agent"], summary["env"], run.root, summary)]))
    if args.repeats > 1:
        return _report_repeats(args, root, [c.seed for c, _ in plays], summaries)
    summary = summaries[0]
    command.print_result(
        summary,
        as_json=args.json,
        text=lambda: (
            f"{format_summary(summary)}\nresults: {root.results}, per task: {root.per_task}, "
            f"summary: {root.summary}, curve: {root.curve}, τ² format: {root.tau2_results}"
        ),
    )
    return 0


def _report_repeats(
    args: argparse.Namespace, root: TauRun, seeds: list[int], summaries: list[dict[str, Any]]
) -> int:
    from apigen_rules.jsonl import write_json_atomic
    from evaluation.tau.repeats import format_spread, repeat_spread

    spread = {**repeat_spread(summaries), "seeds": seeds, "summaries": summaries}
    write_json_atomic(root.repeats_summary, spread)
    command.print_result(
        spread,
        as_json=args.json,
        text=lambda: (
            "".join(f"{format_summary(summary)}\n\n" for summary in summaries)
            + f"{format_spread(spread, seeds)}\nrepeats: {root.repeat(1).root} .. "
            f"{root.repeat(len(seeds)).root}, spread: {root.repeats_summary}"
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
