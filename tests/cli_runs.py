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
