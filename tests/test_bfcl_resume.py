"""A BFCL run grows its result files as items finish, so a run killed after hours loses nothing: SIGKILL
it mid-way, resume, and every item is in its file exactly once (BFCL's order, no duplicate ids)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datagen.rundir import BfclRun

pytest.importorskip("bfcl_eval", reason="needs bfcl-eval (BFCL data)")

from evaluation.bfcl import data  # noqa: E402

TESTS = Path(__file__).parent
ROOT = TESTS.parent
CATEGORY, ITEMS = "simple_python", 30

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from scripted import ScriptedModel
    from evaluation.bfcl.generate import RunSettings, generate

    class SlowModel(ScriptedModel):
        async def chat(self, messages, **kwargs):
            await asyncio.sleep(0.1)
            return await super().chat(messages, **kwargs)

    model = SlowModel(lambda messages, kwargs: ["I cannot help with that."])
    folder = Path(sys.argv[1])
    asyncio.run(generate(model, [{category!r}], RunSettings(mode="prompt"), {items}, folder, concurrency=3))
""")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for_rows(path: Path, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} rows")


def test_a_killed_generation_resumes_with_every_item_exactly_once(tmp_path: Path):
    script = tmp_path / "bfcl_run.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), category=CATEGORY, items=ITEMS))
    folder = tmp_path / "model"
    results = BfclRun.result_file(folder, CATEGORY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(folder)], env=env)
    _wait_for_rows(results, 4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _rows(results)
    assert 4 <= len(before) < ITEMS, "the run must be killed mid-way"
    with results.open("a") as handle:
        handle.write('{"id": "simple_python_29", "resu')  # the torn line a kill mid-write leaves
    subprocess.run([sys.executable, str(script), str(folder)], env=env, check=True, timeout=300)
    after = _rows(results)
    wanted = [e.id for e in data.load_entries(CATEGORY)[:ITEMS]]
    assert [row["id"] for row in after] == wanted
    kept = {row["id"]: row for row in before}
    assert all(row == kept[row["id"]] for row in after if row["id"] in kept), "a finished item was redone"


@pytest.mark.slow
@pytest.mark.vllm
def test_the_cli_on_the_embedded_model_resumes_after_sigkill(tmp_path: Path, plain_env: dict[str, str]):
    """As a user runs it: `apigen-mt eval bfcl` killed with SIGKILL, then `--resume`."""
    out = tmp_path / "bfcl"
    command = [
        str(ROOT / ".venv" / "bin" / "apigen-mt"), "eval", "bfcl", "--model", "embedded", "--prompt-mode", "hermes",
        "--categories", CATEGORY, "--limit", "12", "--max-tokens", "48", "--concurrency", "2",
        "--out", str(out), "--no-score",
    ]  # fmt: skip
    results = BfclRun.result_file(BfclRun(out).result_folder("embedded"), CATEGORY)
    proc = subprocess.Popen(command, env=plain_env, start_new_session=True)
    try:
        _wait_for_rows(results, 3, timeout=600)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _rows(results)
    assert 3 <= len(before) < 12, "the run must be killed mid-way"
    refused = subprocess.run(command, env=plain_env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr
    subprocess.run([*command, "--resume"], env=plain_env, check=True, timeout=900)
    after = _rows(results)
    assert [row["id"] for row in after] == [e.id for e in data.load_entries(CATEGORY)[:12]]
