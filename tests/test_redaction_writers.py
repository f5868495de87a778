"""A credential given to every writer appears in no written file and no log line: URL userinfo whose
password holds `@`, an API key in a URL's query string, a header, an environment-style key. The
writers: the engine-statistics poller, `blueprints` / `simulate` (config.yaml, records, retry log),
the dataset card and export, τ's and next-action's saved settings, BFCL's metadata, a recipe error
line, and training's data report, model card and Hub push."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cli_runs import APIGEN_MT, ROOT, dead_port, gold_blueprint_line

from apigen_rules.redact import REDACTED
from datagen.rundir import BfclRun, DatagenRun, NextActionRun, TauRun

PASSWORD = "p@ss:Never@Written-7731"  # two `@` and a `:` in the password
KEY = "sk-NeverWrittenKey7731"
TOKEN = "hf_NeverWrittenToken7731"
SECRETS = ("Never@Written", "NeverWritten", KEY, TOKEN)


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} holds a credential ({secret})"


def _assert_tree_clean(root: Path) -> None:
    files = [path for path in sorted(root.rglob("*")) if path.is_file()]
    assert files, f"nothing written under {root}"
    for path in files:
        _assert_clean(path.read_text(encoding="utf-8", errors="replace"), str(path))


def _urls(port: int) -> list[str]:
    return [f"http://user:{PASSWORD}@127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}/v1?api_key={KEY}"]


def _model(port: int) -> dict:
    return {
        "model": "m",
        "backend": "openai",
        "tool_format": "hermes",
        "base_urls": _urls(port),
        "max_retries": 1,
        "engine_args": {"hf_token": TOKEN, "X-Api-Key": KEY},  # env-style and header-style keys
    }


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([APIGEN_MT, *argv], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


# -- the engine-statistics poller ------------------------------------------------------------------

_METRICS = "# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total 7.0\n"


class _Metrics(BaseHTTPRequestHandler):
    """A /metrics page behind basic auth (the password as the URL spelled it)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        expected = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
        ok = self.path == "/metrics" and self.headers.get("Authorization") == expected
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(_METRICS.encode() if ok else b"no")

    def log_message(self, *args) -> None:
        pass


def test_the_engine_poller_authenticates_and_never_logs_the_password(caplog):
    from datagen.llm.engine_stats import ServerStats

    caplog.set_level(logging.DEBUG)  # httpx logs every request URL
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    good = ServerStats([f"http://user:{PASSWORD}@127.0.0.1:{port}/v1"])
    refused = ServerStats([f"http://user:{PASSWORD}@127.0.0.1:{port}/v1/x?api_key={KEY}"])  # a 401
    try:
        refused._thread.join(timeout=10)  # a server that refuses the poller is asked once
        for _ in range(100):
            if good.snapshot().generation_tokens == 7:
                break
            threading.Event().wait(0.1)
        assert good.snapshot().generation_tokens == 7  # the password with `@` reached the server
    finally:
        good.close()
        refused.close()
        server.shutdown()
    assert "no engine figures from" in caplog.text
    _assert_clean(caplog.text, "the log")
    _assert_clean(repr(good.metrics_urls + refused.metrics_urls), "the poller's URLs")


# -- datagen commands and files --------------------------------------------------------------------


def _recipe(tmp_path: Path, port: int) -> Path:
    data = yaml.safe_load((ROOT / "recipes" / "datagen" / "demo.yaml").read_text())
    data["models"]["smol"] = _model(port)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("command", ["blueprints", "simulate"])
def test_a_datagen_run_writes_no_credential(command: str, tmp_path: Path, plain_env: dict[str, str]):
    recipe = _recipe(tmp_path, dead_port())
    run = tmp_path / "run"
    if command == "simulate":
        run.mkdir()
        DatagenRun(run).blueprints.write_text(gold_blueprint_line("retail"))
        argv = ["simulate", "--config", str(recipe), "--run-dir", str(run), "--attempts", "1", "--quiet"]
    else:
        argv = ["blueprints", "--config", str(recipe), "--out", str(run), "--limit", "1", "--quiet"]
    done = _run(argv, plain_env)
    assert done.returncode == 1 and "unreachable" in done.stderr, done.stderr[-3000:]
    _assert_clean(done.stdout + done.stderr, "the command's output")
    _assert_tree_clean(run)
    saved = DatagenRun(run).read_recipe()["models"]["smol"]
    assert saved["base_urls"][0].startswith(f"http://{REDACTED}@127.0.0.1:")
    assert saved["base_urls"][1].endswith(f"/v1?api_key={REDACTED}")
    assert saved["engine_args"] == {"hf_token": REDACTED, "X-Api-Key": REDACTED}


def test_the_dataset_export_of_a_run_with_an_unredacted_recipe_is_clean(tmp_path: Path):
    """An older run's config.yaml may hold credentials raw: the card, export.json and data files do not."""
    from datagen.export import export_run
    from datagen.records import Trajectory

    run = tmp_path / "run"
    run.mkdir()
    rows = [
        Trajectory(
            id=f"t{i}",
            blueprint_id=f"bp{i}",
            env="retail",
            seed=0,
            messages=[{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": "done"}],
            tools=[],
            success=True,
            reward=1.0,
        ).model_dump_json()
        for i in range(4)
    ]
    DatagenRun(run).trajectories.write_text("\n".join(rows) + "\n")
    recipe = {"name": "old", "env": "retail", "hub_token": TOKEN, "models": {"smol": _model(dead_port())}}
    DatagenRun(run).recipe.write_text(yaml.safe_dump(recipe))
    for fmt in ("jsonl", "hf"):
        export_run(run, tmp_path / fmt, fmt=fmt, test=0.25)
        _assert_tree_clean(tmp_path / fmt)


def test_a_recipe_error_line_shows_no_credential(tmp_path: Path, plain_env: dict[str, str]):
    data = yaml.safe_load(_recipe(tmp_path, dead_port()).read_text())
    data["models"]["smol"]["base_urls"] = _urls(1)[0]  # a string, not a list: the line shows it
    data["models"]["smol"]["headers"] = {"Authorization": f"Bearer {KEY}", "X-Api-Key": KEY}
    recipe = tmp_path / "bad.yaml"
    for broken in (
        {"base_urls": data["models"]["smol"]["base_urls"]},
        {"headers": data["models"]["smol"]["headers"]},
    ):
        model = {**_model(0), **broken}
        recipe.write_text(yaml.safe_dump({**data, "models": {"smol": model}}))
        done = _run(["blueprints", "--config", str(recipe), "--out", str(tmp_path / "run")], plain_env)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
        _assert_clean(done.stderr, "the error line")


def test_tau_writes_no_credential(tmp_path: Path, plain_env: dict[str, str]):
    out = tmp_path / "tau"
    argv = [
        "eval",
        "tau",
        "--env",
        "bank",
        "--limit",
        "1",
        "--trials",
        "1",
        "--backend",
        "openai",
        "--model",
        "m",
    ]
    argv += ["--tool-format", "hermes", "--user-model", "m", "--out", str(out), "--json"]
    for url in _urls(dead_port()):
        argv += ["--base-url", url]
    done = _run(argv, plain_env)
    assert done.returncode == 1 and "unreachable" in done.stderr, done.stderr[-3000:]
    _assert_clean(done.stdout + done.stderr, "the command's output")
    _assert_tree_clean(out)
    assert REDACTED in TauRun(out).recipe.read_text()


def test_next_action_and_bfcl_settings_are_saved_redacted(tmp_path: Path):
    NextActionRun(tmp_path / "na").write_recipe(
        {"models": {"m": _model(1)}, "data": f"https://h/d?token={KEY}"}
    )
    BfclRun(tmp_path / "bfcl").write_metadata({"model": _urls(1)[0], "backend": "openai"})
    _assert_tree_clean(tmp_path)


# -- training ---------------------------------------------------------------------------------------


def test_training_reports_cards_and_the_hub_push_carry_no_credential(tmp_path: Path, monkeypatch, caplog):
    from training.chat_templates import SHIPPED_TEMPLATES
    from training.export import push_output_dir
    from training.mixture import SourceConfig, build_mixture
    from training.model_card import write_model_card
    from training.sft import parse_args

    caplog.set_level(logging.DEBUG)
    folder = tmp_path / f"hf_token={TOKEN}"  # a local path that names a secret
    folder.mkdir()
    sample = ROOT / "tests" / "data" / "training_sharegpt_sample.json"
    (folder / "data.json").write_text(sample.read_text())
    _, report = build_mixture([SourceConfig(path=str(folder / "data.json"), layout="sharegpt")], seed=0)
    report.sources[0].path = _urls(1)[0] + f"&token={KEY}"  # as a URL source would name itself
    output = tmp_path / "out"
    output.mkdir()
    report.write(output / "data_report.json")

    recipe = tmp_path / "recipe.yaml"
    base = (ROOT / "recipes" / "sft" / "smollm2-135m" / "cpu_lora.yaml").read_text()
    recipe.write_text(base + f"\nenv:\n  HF_TOKEN: {TOKEN}\n  OPENAI_API_KEY: {KEY}\nhub_token: {TOKEN}\n")
    script_args, training_args, model_args = parse_args(["--config", str(recipe)])
    command = ["--config", str(recipe), "--hub_token", TOKEN, "--dataset_path", _urls(1)[0]]
    write_model_card(
        output, script_args, training_args, model_args, SHIPPED_TEMPLATES["smollm2"], report, {},
        str(recipe), command, base_model="embedded", method="sft",
    )  # fmt: skip

    pushed: dict[str, str] = {}

    class FakeHub:  # the Hub cannot be reached here: record what would be uploaded
        def __init__(self, token=None):
            pass

        def create_repo(self, *args, **kwargs):
            pass

        def upload_folder(self, *, folder_path, **kwargs):
            for path in Path(folder_path).rglob("*"):
                if path.is_file():
                    pushed[path.name] = path.read_text(encoding="utf-8", errors="replace")

    monkeypatch.setattr("huggingface_hub.HfApi", FakeHub)
    push_output_dir(output, "org/model", private=True, token=TOKEN)
    assert {"data_report.json", "README.md"} <= set(pushed)
    for name, text in pushed.items():
        _assert_clean(text, f"the pushed {name}")
    _assert_clean(caplog.text, "the training log")
    assert json.loads(pushed["data_report.json"])["sources"][0]["path"].startswith(f"http://{REDACTED}@")


def test_an_alias_declared_twice_is_refused_without_its_credentials():
    from datagen.llm import ModelSpec
    from datagen.llm.pool import ModelPool

    pool = ModelPool({"m": ModelSpec.model_validate(_model(1))})
    with pytest.raises(ValueError) as refused:
        pool.declare("m", ModelSpec.model_validate({**_model(2), "max_model_len": 4096}))
    assert "base_urls" in str(refused.value) and "max_model_len" in str(refused.value)
    _assert_clean(str(refused.value), "the error")
