"""Running the installed `apigen-mt` the way a user does (helpers shared by the CLI tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APIGEN_MT = str(Path(sys.executable).parent / "apigen-mt")


def small_tau_args(out: Path) -> list[str]:
    """`apigen-mt eval tau` on one held-out retail task, one trial, the embedded model in both roles."""
    return [
        "eval", "tau", "--env", "retail", "--tasks", "gold", "--limit", "1", "--trials", "1",
        "--model", "embedded", "--user-model", "embedded",
        "--max-steps", "4", "--max-tokens", "48", "--user-max-tokens", "32",
        "--out", str(out), "--json",
    ]  # fmt: skip


def run_json(args: list[str], env: dict[str, str], timeout: float = 300) -> Any:
    """Run ``apigen-mt ARGS`` and parse its whole stdout as one JSON document."""
    done = subprocess.run(
        [APIGEN_MT, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-4000:]
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"stdout is not one JSON document ({exc}); it starts:\n{done.stdout[:2000]}"
        ) from None


def dead_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on exit


def gold_blueprint_line(env: str) -> str:
    """One JSONL line of blueprints.jsonl: the domain's first gold task as an accepted blueprint."""
    from datagen.envs.registry import get_domain
    from datagen.records import Blueprint

    task = get_domain(env).gold_tasks[0]
    fields = task.model_dump(include={"user_id", "persona", "instruction", "actions", "outputs"})
    return Blueprint(id="bp0", env=env, seed=0, **fields).model_dump_json() + "\n"
