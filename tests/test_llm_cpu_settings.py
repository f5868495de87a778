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
def test_dtype_follows_native_bf16(native: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(vllm_backend, "cpu_has_native_bf16", lambda: native)
    settings = vllm_backend.cpu_engine_settings(4096)
    assert settings["dtype"] == ("bfloat16" if native else "float32")
    assert settings["enforce_eager"] is True and settings["enable_chunked_prefill"] is False
    assert settings["max_num_batched_tokens"] >= 4096  # a whole prompt fits one prefill step


def test_server_flags_say_the_same_as_engine_settings():
    settings = vllm_backend.cpu_engine_settings(8192)
    flags = vllm_backend.cpu_server_flags(8192)
    assert flags[flags.index("--dtype") + 1] == settings["dtype"]
    assert flags[flags.index("--max-num-batched-tokens") + 1] == str(settings["max_num_batched_tokens"])
    assert "--enforce-eager" in flags and "--no-enable-chunked-prefill" in flags


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="on a GPU machine the script keeps vLLM's defaults"
)
def test_serve_script_passes_the_cpu_flags(tmp_path: Path):
    """serve_vllm.sh run with a stand-in interpreter that prints the server command it would exec."""
    fake = tmp_path / "python"
    fake.write_text(
        f'#!/usr/bin/env bash\nif [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\necho "$@"\n'
    )
    fake.chmod(0o755)
    done = subprocess.run(
        [str(ROOT / "scripts" / "serve_vllm.sh"), "some/model", "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake)},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    command = done.stdout.split()
    for flag in vllm_backend.cpu_server_flags():
        assert flag in command
    assert command[-2:] == ["--port", "1"]
