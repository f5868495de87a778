"""Credentials never reach a log, a saved config, an error or a card: one rule (apigen_rules/redact.py,
which every package imports) applied at every place config is logged, saved or rendered."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_runs import dead_port, gold_blueprint_line
from pydantic import ValidationError

from apigen_rules.redact import REDACTED, is_secret_key, redact_config, redact_text, validation_problems
from datagen.rundir import DatagenRun, TauRun

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "pw-Never-Written-7731"
TOKEN = "hf_NeverWrittenToken7731"
SECRETS = (PASSWORD, TOKEN)


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} holds a credential"


# -- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, secret",
    [
        ("hub_token", True),
        ("HF_TOKEN", True),
        ("api_key", True),
        ("apiKey", True),
        ("password", True),
        ("client_secret", True),
        ("aws_secret_access_key", True),
        ("Authorization", True),
        ("max_tokens", False),
        ("judge_max_tokens", False),
        ("api_key_env", False),
        ("token_budget", False),
        ("KeyError", False),
        ("tokenizer", False),
    ],
)
def test_which_keys_name_a_credential(key: str, secret: bool):
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    "text, kept",
    [
        (f"hub_token: {TOKEN}\nmax_tokens: 512", "max_tokens: 512"),
        (f'{{"api_key": "{PASSWORD}", "model": "m"}}', '"model": "m"'),
        (f"input_value={{'password': '{PASSWORD}'}}", "input_value="),
        (f"training/sft.py --config a.yaml --hub_token {TOKEN} --max_steps 3", "--max_steps 3"),
        (f"--hub-token={TOKEN}", "--hub-token="),
        (f"HF_TOKEN={TOKEN} python x.py", "python x.py"),
        (f"http://user:{PASSWORD}@127.0.0.1:8000/v1 failed", "@127.0.0.1:8000/v1 failed"),
        (f"Authorization: Bearer {TOKEN}", "Authorization:"),
        ("KeyError: 'order_id'", "KeyError: 'order_id'"),
    ],
)
def test_free_text_loses_its_credentials_and_keeps_the_rest(text: str, kept: str):
    redacted = redact_text(text)
    _assert_clean(redacted, text)
    assert kept in redacted


def test_config_values_under_secret_keys_and_url_userinfo_are_masked():
    config = {
        "models": {"t": {"base_urls": [f"http://u:{PASSWORD}@h/v1"], "api_key_env": "OPENAI_API_KEY"}},
        "hub_token": TOKEN,
        "push": {"token": None},
    }
    redacted = redact_config(config)
    _assert_clean(json.dumps(redacted), "config")
    assert redacted["models"]["t"] == {
        "base_urls": [f"http://{REDACTED}@h/v1"],
        "api_key_env": "OPENAI_API_KEY",
    }
    assert redacted["hub_token"] == REDACTED and redacted["push"] == {"token": None}


# -- every place -----------------------------------------------------------------------------------


class _Refusing(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that is always overloaded; it records the auth it was sent."""

    seen: list[str | None] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append(self.headers.get("Authorization"))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"overloaded")

    def log_message(self, *args) -> None:
        pass


def test_the_openai_backend_sends_url_userinfo_as_auth_and_never_logs_or_raises_it(caplog):
    from datagen.llm import ModelSpec
    from datagen.llm.base import LLMRequestError
    from datagen.llm.openai_backend import OpenAIChatModel

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://user:{PASSWORD}@127.0.0.1:{server.server_address[1]}/v1"
    spec = ModelSpec(model="m", backend="openai", tool_format="hermes", base_urls=[url], max_retries=1)
    caplog.set_level(logging.DEBUG)  # httpx logs every request URL at INFO

    async def ask() -> None:
        model = OpenAIChatModel(spec)
        try:
            await model.chat([{"role": "user", "content": "hi"}], max_tokens=4)
        finally:
            await model.aclose()

    try:
        with pytest.raises(LLMRequestError) as raised:
            asyncio.run(ask())
    finally:
        server.shutdown()
    assert (
        _Refusing.seen
        and _Refusing.seen[0] == "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    )
    _assert_clean(str(raised.value), "the raised error")
    _assert_clean(caplog.text, "the log")
    assert "(retry 1 of 1)" in caplog.text  # the openai SDK's retry line: retried, and logged clean


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [sys.executable, "-m", "datagen.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_phase2_run_writes_no_credential_anywhere(tmp_path: Path):
    """`apigen-mt simulate` against a server that refuses connections: the run stops (an outage is not
    a failed dialogue), and the saved recipe, the retry log and the output all name the server
    without its password."""
    url = f"http://user:{PASSWORD}@127.0.0.1:{dead_port()}/v1"
    model = {"model": "m", "backend": "openai", "tool_format": "hermes", "base_urls": [url], "max_retries": 1}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        json.dumps(
            {
                "name": "r",
                "env": "bank",
                "models": {"m": model},
                "simulate": {"agent": {"model": "m"}, "user": {"model": "m", "best_of_n": 1}},
            }
        )
    )
    run = tmp_path / "run"
    run.mkdir()
    DatagenRun(run).blueprints.write_text(gold_blueprint_line("bank"))
    done = _run(["simulate", "--config", str(recipe), "--run-dir", str(run), "--attempts", "1"], tmp_path)
    assert done.returncode == 1 and "unreachable" in done.stderr, done.stderr[-2000:]
    _assert_clean(done.stdout + done.stderr, "the command's output")
    assert "(retry 1 of 1)" in done.stderr and REDACTED in done.stderr
    for path in sorted(run.iterdir()):
        _assert_clean(path.read_text(encoding="utf-8", errors="replace"), str(path))
    saved = DatagenRun(run).read_recipe()
    assert saved["models"]["m"]["base_urls"] == [url.replace(f"user:{PASSWORD}", REDACTED)]
    assert not DatagenRun(run).failures.read_text().strip()  # nothing recorded: --resume runs it again


def test_a_tau_run_writes_no_credential_anywhere(tmp_path: Path):
    url = f"http://user:{PASSWORD}@127.0.0.1:{dead_port()}/v1"
    out = tmp_path / "out"
    argv = ["eval", "tau", "--env", "bank", "--limit", "1", "--trials", "1", "--backend", "openai"]
    argv += ["--model", "m", "--tool-format", "hermes", "--user-model", "m", "--base-url", url]
    argv += ["--out", str(out)]
    done = _run([*argv, "--json"], tmp_path)
    assert done.returncode == 1 and "unreachable" in done.stderr, done.stderr[-2000:]
    _assert_clean(done.stdout + done.stderr, "the command's output")
    for path in sorted(out.iterdir()):
        _assert_clean(path.read_text(encoding="utf-8", errors="replace"), str(path))
    assert REDACTED in TauRun(out).recipe.read_text()
    resumed = _run([*argv, "--resume", "--json"], tmp_path)  # the saved (redacted) recipe still matches
    assert resumed.returncode == 1 and "another recipe" not in resumed.stderr, resumed.stderr[-2000:]


def test_the_phase1_saved_config_is_redacted(tmp_path: Path):
    from datagen.blueprint.runner import prepare_run_dir
    from datagen.recipe.datagen import load_datagen_recipe

    recipe = tmp_path / "recipe.yaml"
    url = f"http://user:{PASSWORD}@127.0.0.1:8000/v1"
    text = (ROOT / "recipes" / "datagen" / "demo.yaml").read_text()
    recipe.write_text(text.replace("backend: vllm,", f"backend: openai, base_urls: ['{url}'],", 1))
    config = load_datagen_recipe(recipe)
    assert config.models["smol"].base_urls == [url]
    prepare_run_dir(config, tmp_path / "run", resume=False)
    saved = DatagenRun(tmp_path / "run").recipe.read_text()
    _assert_clean(saved, "config.yaml")
    assert f"{REDACTED}@127.0.0.1:8000/v1" in saved
    prepare_run_dir(config, tmp_path / "run", resume=True)  # the same config resumes without a warning


@pytest.mark.parametrize("where", ["simulate", "recipe", "tau", "model"])
def test_a_config_error_never_echoes_a_secret(tmp_path: Path, where: str):
    from datagen.llm import ModelSpec
    from datagen.recipe import RecipeError, validate_recipe
    from datagen.recipe.datagen import DatagenRecipe
    from datagen.recipe.episode import SimulateConfig
    from evaluation.tau.config import TauConfig

    model = {"model": "m", "api_key": PASSWORD, "base_urls": [f"http://u:{PASSWORD}@h/v1", 5]}
    cls, data = {
        "simulate": (SimulateConfig, {"agent": {"model": "m", "api_key": PASSWORD}}),
        "recipe": (DatagenRecipe, {"name": "n", "env": "bank", "models": {"m": model}}),
        "tau": (TauConfig, {"env": "bank", "models": {"m": model}}),
        "model": (ModelSpec, model),
    }[where]
    with pytest.raises(ValidationError) as raised:
        cls.model_validate(data)
    _assert_clean(str(raised.value), "the validation error")
    explained = validation_problems(raised.value)
    _assert_clean(explained, "the explained error")
    assert "api_key: Extra inputs are not permitted" in explained
    if where != "model":
        with pytest.raises(RecipeError) as refused:
            validate_recipe(data, cls, "recipe.yaml") if where != "simulate" else validate_recipe(
                {"name": "n", "env": "bank", "simulate": data}, DatagenRecipe, "recipe.yaml"
            )
        _assert_clean(str(refused.value), "the loader's one line")


def test_the_recipe_loader_names_the_bad_key_without_its_value(tmp_path: Path):
    from datagen.recipe import RecipeError
    from datagen.recipe.datagen import load_datagen_recipe

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"name": "r", "env": "bank", "simulate": {"agent": {"hub_token": TOKEN}}}))
    with pytest.raises(RecipeError) as raised:
        load_datagen_recipe(recipe)
    _assert_clean(str(raised.value), "the loader's message")
    assert "simulate.agent.hub_token" in str(raised.value)
