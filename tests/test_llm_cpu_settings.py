"""The CPU engine settings are decided in one place and reach both ways of running vLLM: the
in-process engine and `vllm serve` (serve_vllm.sh, the test server). A bf16 engine on a CPU without
native bf16 ran 4-5x slower here and pushed `make demo` past its time budget."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datagen.llm import vllm_backend

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("native", [True, False])
def test_dtype_follows_native_bf16(native: bool, monkeypatch: pytest.MonkeyPatch, embedded_model: Path):
    monkeypatch.setattr(vllm_backend, "cpu_has_native_bf16", lambda: native)
    settings = vllm_backend.cpu_engine_settings(4096, model=str(embedded_model), concurrency=4)
    assert settings["dtype"] == ("bfloat16" if native else "float32")
    assert settings["enforce_eager"] is True and settings["enable_chunked_prefill"] is False
    assert settings["max_num_batched_tokens"] >= 4096  # a whole prompt fits one prefill step


def test_server_flags_say_the_same_as_engine_settings(embedded_model: Path):
    settings = vllm_backend.cpu_engine_settings(8192, model=str(embedded_model), concurrency=4)
    flags = vllm_backend.cpu_server_flags(settings)
    assert flags[flags.index("--dtype") + 1] == settings["dtype"]
    assert flags[flags.index("--max-num-batched-tokens") + 1] == str(settings["max_num_batched_tokens"])
    assert "--enforce-eager" in flags and "--no-enable-chunked-prefill" in flags


def _serve(tmp_path: Path, model: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """serve_vllm.sh run with a stand-in interpreter: the script's own python helper runs for real,
    the server it would exec prints its command line instead of starting."""
    fake = tmp_path / "python"
    fake.write_text(
        f'#!/usr/bin/env bash\nif [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\necho "$@"\n'
    )
    fake.chmod(0o755)
    return subprocess.run(
        [str(ROOT / "scripts" / "serve_vllm.sh"), str(model), "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake), **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


CPU_ONLY = pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="on a GPU machine the script keeps vLLM's defaults"
)


@CPU_ONLY
def test_serve_script_passes_the_cpu_flags(tmp_path: Path, embedded_model: Path):
    done = _serve(tmp_path, embedded_model, {})
    assert done.returncode == 0, done.stderr
    command = done.stdout.split()
    expected = vllm_backend.server_flags_for(["--model", str(embedded_model)])
    for flag in expected:
        if flag.startswith("--"):
            assert flag in command
    # Same settings; the KV-cache size follows the memory free at each call, so only its presence
    assert command[command.index("--dtype") + 1] == expected[expected.index("--dtype") + 1]
    assert int(command[command.index("--kv-cache-memory-bytes") + 1]) > 0
    assert command[-2:] == ["--port", "1"]


@CPU_ONLY
def test_serve_script_stops_before_the_server_when_memory_is_short(tmp_path: Path, embedded_model: Path):
    """One line from the script itself; the server is never executed."""
    done = _serve(tmp_path, embedded_model, {"VLLM_CPU_KVCACHE_SPACE": "100000"})
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "lower VLLM_CPU_KVCACHE_SPACE=100000" in done.stderr


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_cpu_still_dies_on_seeded_prompts_prefilled_in_chunks():
    """Why chunked prefill stays off on a CPU (cpu_engine_settings): a seeded request whose prompt is
    split across prefill chunks kills vLLM-CPU 0.32's engine, while unseeded ones chunk fine. When
    this test fails, a vLLM release has fixed it: turn chunked prefill on for the CPU again."""
    import asyncio

    from datagen.llm import ModelSpec, build_chat_model
    from datagen.llm.base import ModelUnavailableError

    prompt = [{"role": "user", "content": "Summarize: " + "the quick brown fox jumps. " * 300}]

    async def run() -> tuple[int, type[BaseException] | None]:
        chunked = {"enable_chunked_prefill": True, "max_num_batched_tokens": 512}
        model = build_chat_model(ModelSpec(model="embedded", max_concurrency=4, engine_args=chunked))
        try:
            unseeded = await model.chat(prompt, max_tokens=2, temperature=0.8)
            try:
                fresh = [{"role": "user", "content": "Describe: " + "a slow green turtle naps. " * 300}]
                await model.chat(fresh, max_tokens=2, seed=1)  # nothing cached: prefilled in chunks
            except ModelUnavailableError as exc:
                return unseeded.usage.prompt_tokens, type(exc)
            return unseeded.usage.prompt_tokens, None
        finally:
            await model.aclose()

    prompt_tokens, failure = asyncio.run(run())
    assert prompt_tokens > 512  # the unseeded prompt really was split, and ran
    assert failure is ModelUnavailableError
