"""`apigen-mt envs`: list, inspect, self-test, call and scaffold environment domains."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from datagen.cli_flags import command_parser, deprecated_alias
from datagen.envs.base import Domain
from datagen.envs.registry import DomainLoadError, get_domain, list_domains


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("apigen-mt envs", "Executable environment domains.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="installed domains with their tool, check and gold-task counts")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p = sub.add_parser("show", help="a domain's tools (with schemas), policy checks and policy")
    p.add_argument("name", help="domain name or user domain folder")
    p.add_argument("--json", action="store_true", help="print the tool schemas as JSON (OpenAI tools format)")
    p = sub.add_parser("check", help="self-test a domain (schemas, gold replays, determinism)")
    p.add_argument("name", help="domain name or user domain folder")
    p = sub.add_parser("call", help="run one tool call on a fresh state; print the observation and diff")
    p.add_argument("name", help="domain name or user domain folder")
    p.add_argument("tool", help="tool name")
    p.add_argument("arguments", nargs="?", default="{}", help="the arguments as a JSON object")
    p.add_argument(
        "--seed", type=int, default=None, help="database seed (default: the domain's evaluation seed)"
    )
    p = sub.add_parser(
        "serve",
        help="serve a domain over MCP or OpenEnv to agents and trainers elsewhere",
        description="Serve a domain: MCP (tools, the policy, one environment per session) or OpenEnv "
        "(reset / step / state, Phase 2's verdict as the episode reward).",
    )
    p.add_argument("name", help="domain name, user domain folder, or remote environment file")
    p.add_argument(
        "--protocol",
        choices=("mcp", "openenv"),
        required=True,
        help="mcp: an MCP server (tools, policy, state); openenv: an OpenEnv server (reset, step, state)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--stdio", action="store_true", help="MCP over stdin/stdout (one client) instead of HTTP")
    p.add_argument(
        "--seed", type=int, default=None, help="database seed sessions start from (default: eval seed)"
    )
    p.add_argument("--task", default=None, help="a gold or example task whose state sessions start from")
    p.add_argument(
        "--recipe", type=Path, default=None, help="recipe declaring `models:` (and `simulate.user`)"
    )
    p.add_argument("--user", default=None, help="OpenEnv: model alias of the simulated user (from --recipe)")
    p.add_argument("--max-sessions", type=int, default=64, help="OpenEnv: concurrent sessions (default 64)")
    p = sub.add_parser("new", help="scaffold a user domain folder that passes `envs check`")
    p.add_argument("name", help="domain name (a Python identifier, e.g. library)")
    p.add_argument("--out", default=".", help="parent folder to create NAME/ in (default: current folder)")
    deprecated_alias(p, "--dir", "--out")
    p.add_argument("--force", action="store_true", help="overwrite files of an existing folder")
    return parser


def domain_summary(domain: Domain) -> dict[str, Any]:
    """The counts `envs list --json` prints for one domain."""
    return {
        "name": domain.name,
        "source": domain.source,
        "tools": len(domain.tools),
        "write_tools": len(domain.write_tools()),
        "policy_checks": len(domain.checks),
        "gold_tasks": len(domain.gold_tasks),
    }


def _list(as_json: bool, out: Console, err: Console) -> int:
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for name in list_domains():
        try:
            summary = domain_summary(get_domain(name))
        except DomainLoadError as exc:
            failed[name] = str(exc)
            continue
        rows.append({**summary, "name": name})
    if as_json:
        # stdout stays the documented contract; domains that did not load are reported on stderr.
        print(json.dumps(rows, indent=2))
        for name, reason in failed.items():
            err.print(f"[yellow]domain {name} did not load:[/] {reason}", markup=True, highlight=False)
        return 0
    table = Table(title="environment domains")
    for column in ("name", "source", "tools", "write tools", "policy checks", "gold tasks"):
        table.add_column(column, justify="left" if column in ("name", "source") else "right")
    for row in rows:
        table.add_row(
            row["name"],
            row["source"],
            *(str(row[k]) for k in ("tools", "write_tools", "policy_checks", "gold_tasks")),
        )
    for name in failed:
        table.add_row(name, "[red]not loaded[/]", "-", "-", "-", "-")
    out.print(table)
    for name, reason in failed.items():
        out.print(f"[red]{name}[/]: {reason}", highlight=False)
    return 0


def _describe_type(schema: dict[str, Any]) -> str:
    """A JSON-schema property as a short type: string, array[string], "a"|"b", integer|null ..."""
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return "|".join(_describe_type(s) for s in schema[key])
    if schema.get("type") == "array":
        return f"array[{_describe_type(schema.get('items', {}))}]"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    return str(schema.get("type", "any"))


def _describe_parameters(parameters: dict[str, Any]) -> str:
    required = set(parameters.get("required", []))
    lines = []
    for name, prop in parameters.get("properties", {}).items():
        flag = "" if name in required else " (optional)"
        text = f"{name}: {_describe_type(prop)}{flag}"
        if prop.get("description"):
            text += f" — {prop['description']}"
        lines.append(text)
    return "\n".join(lines) or "(none)"


def _show(domain: Domain, as_json: bool, out: Console) -> int:
    if as_json:
        print(json.dumps(domain.tool_schemas(), indent=2))
        return 0
    out.rule(f"{domain.name} ({domain.source})")
    tools = Table(
        title=f"{len(domain.tools)} tools (`envs show {domain.name} --json` for raw schemas)", show_lines=True
    )
    for column in ("tool", "kind", "description", "parameters (from the JSON schema)"):
        tools.add_column(column, overflow="fold")
    for spec in domain.tools:
        params = _describe_parameters(spec.schema["function"]["parameters"])
        tools.add_row(spec.name, spec.kind, spec.description, params)
    out.print(tools)
    checks = Table(title=f"{len(domain.checks)} policy checks")
    for column in ("rule", "check", "what it enforces"):
        checks.add_column(column, overflow="fold")
    for check in domain.checks:
        checks.add_row(check.rule, check.name, check.description)
    out.print(checks)
    graph = domain.dependency_graph()
    out.print(
        f"gold tasks: {len(domain.gold_tasks)}; example tasks: {len(domain.example_tasks)}; "
        f"seeds: train {domain.train_seed}, eval {domain.eval_seed}; "
        f"dependency edges: {sum(len(v) for v in graph.values())}"
    )
    out.rule("policy")
    out.print(Markdown(domain.policy))
    return 0


def _check(domain: Domain, out: Console) -> int:
    from datagen.envs.selftest import self_test

    failures = self_test(domain)
    tasks = len(domain.gold_tasks) + len(domain.example_tasks)
    if failures:
        out.print(f"[red]FAIL[/] {domain.name}: {len(failures)} problem(s):", highlight=False)
        for line in failures:
            out.print(f"  - {line}", highlight=False, markup=False)
        return 1
    out.print(
        f"[green]OK[/] {domain.name}: {len(domain.tools)} tool schemas valid, {tasks} tasks replay "
        "and satisfy their checks, state hash deterministic",
        highlight=False,
    )
    return 0


def _call(domain: Domain, tool: str, raw: str, seed: int | None, out: Console, err: Console) -> int:
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError as exc:
        err.print(
            f'arguments must be a JSON object, e.g. \'{{"order_id": "#W1"}}\'; could not parse {raw!r}: {exc}'
        )
        return 2
    env = domain.new_env(seed)
    before = env.snapshot()
    observation = env.call({"name": tool, "arguments": arguments})
    out.print(f"seed {env.seed} · {tool} · {'ok' if observation.ok else 'error'}", highlight=False)
    if observation.ok:
        out.print_json(observation.content)
    else:
        out.print(observation.content, markup=False, highlight=False)
    changes = env.diff(before, env.snapshot())
    out.rule(f"diff ({len(changes)} change(s))")
    for line in changes:
        out.print(line, markup=False, highlight=False)
    return 0 if observation.ok else 1


def _serve(domain: Domain, args: argparse.Namespace) -> int:
    from datagen.cli_errors import run_command
    from datagen.envs.serve.run import ServeSettings, serve
    from datagen.envs.serve.sessions import StartState

    settings = ServeSettings(
        protocol=args.protocol,
        host=args.host,
        port=args.port,
        stdio=args.stdio,
        start=StartState(seed=args.seed, task_id=args.task),
        recipe=args.recipe,
        user=args.user,
        max_sessions=args.max_sessions,
    )
    if not args.stdio:  # stdout is the protocol's channel under --stdio
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command("envs serve", lambda: serve(domain, settings))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    out, err = Console(), Console(stderr=True)
    if args.command == "list":
        return _list(args.json, out, err)
    if args.command == "new":
        from datagen.envs.scaffold import scaffold_domain

        try:
            from datagen.rundir import check_output_folder

            folder = scaffold_domain(args.name, check_output_folder(Path(args.out)), overwrite=args.force)
        except (ValueError, FileExistsError) as exc:
            err.print(f"envs new: {exc}", markup=False, soft_wrap=True)
            return 2
        out.print(f"created {folder}; try `apigen-mt envs check {folder}`", highlight=False)
        return 0
    try:
        domain = get_domain(args.name)
    except DomainLoadError as exc:
        err.print(f"envs {args.command}: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    if args.command == "show":
        return _show(domain, args.json, out)
    if args.command == "check":
        return _check(domain, out)
    if args.command == "serve":
        return _serve(domain, args)
    return _call(domain, args.tool, args.arguments, args.seed, out, err)


if __name__ == "__main__":
    raise SystemExit(main())
