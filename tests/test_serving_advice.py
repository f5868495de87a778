"""The serving advice users copy: every `scripts/serve_vllm.sh` command in the README, docs/ and the recipes
leaves room for a KV cache on 80 GB GPUs, and the script starts each model family with its own
tool-call parser (the families our recipes name)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from datagen.llm.server_parsers import FAMILIES, VLLM_PARSER_FOR_FORMAT, vllm_tool_parser

ROOT = Path(__file__).resolve().parent.parent
SERVE = re.compile(r"((?:CUDA_VISIBLE_DEVICES=[\d,]+ )?scripts/serve_vllm\.sh [^\n`]*)")

# Published parameter counts (model cards), for the weights a serve command loads.
PARAMETERS_B = {
    "Qwen/Qwen2.5-72B-Instruct": 72.7,
    "Qwen/Qwen2.5-32B-Instruct": 32.5,
    "meta-llama/Llama-3.3-70B-Instruct": 70.6,
    "google/gemma-3-27b-it": 27.4,
}
GPU_GB = 80.0
VLLM_SHARE = 0.9  # vLLM's default gpu_memory_utilization
OVERHEAD_GB = 4.0  # activations, CUDA graphs and the non-torch share per GPU, generously
MIN_KV_GB_PER_GPU = 10.0  # below this a 32k-context dialogue barely fits next to one more

# The parser each family our recipes and docs name must be served with.
EXPECTED_PARSERS = {
    "Qwen/Qwen2.5-72B-Instruct": "hermes",
    "Qwen/Qwen2.5-32B-Instruct": "hermes",
    "Qwen/Qwen2.5-7B-Instruct": "hermes",
    "Qwen/Qwen3-8B": "hermes",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3_json",
    "meta-llama/Llama-3.1-8B-Instruct": "llama3_json",
    "google/gemma-3-27b-it": "pythonic",
    "Salesforce/Llama-xLAM-2-8b-fc-r": "xlam",
    "Salesforce/xLAM-2-32b-fc-r": "xlam",
    "HuggingFaceTB/SmolLM2-135M-Instruct": "hermes",
    "embedded": "hermes",
}


def _documents() -> list[Path]:
    # docs/reference/ is generated from the code (its error index quotes messages, not commands)
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "reference" not in p.relative_to(ROOT).parts)
    return [ROOT / "README.md", *docs, *sorted((ROOT / "recipes").rglob("*.yaml"))]


def _serve_commands() -> list[tuple[Path, str]]:
    found = []
    for path in _documents():
        found += [(path, match.strip()) for match in SERVE.findall(path.read_text(encoding="utf-8"))]
    return found


def test_every_serve_command_leaves_room_for_a_kv_cache() -> None:
    commands = [(p, c) for p, c in _serve_commands() if " embedded" not in c]
    assert len(commands) >= 10, commands
    devices_per_file: dict[Path, list[set[str]]] = {}
    for path, command in commands:
        words = shlex.split(command)
        env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
        words = [w for w in words if "=" not in w or w.startswith("-")]
        model = words[1]
        assert model in PARAMETERS_B, f"{path.name}: add {model}'s parameter count to PARAMETERS_B"
        tp = int(words[words.index("--tensor-parallel-size") + 1]) if "--tensor-parallel-size" in words else 1
        fp8 = "--quantization" in words and words[words.index("--quantization") + 1] == "fp8"
        weights_gb = PARAMETERS_B[model] * (1.03 if fp8 else 2.0)  # FP8 keeps embeddings in bf16
        kv_per_gpu = GPU_GB * VLLM_SHARE - OVERHEAD_GB - weights_gb / tp
        assert kv_per_gpu >= MIN_KV_GB_PER_GPU, (
            f"{path.relative_to(ROOT)}: `{command}` leaves {kv_per_gpu:.0f} GB of KV cache per GPU; "
            "raise --tensor-parallel-size or add --quantization fp8"
        )
        if "CUDA_VISIBLE_DEVICES" in env:
            devices = set(env["CUDA_VISIBLE_DEVICES"].split(","))
            assert len(devices) == tp, f"{path.name}: {command}: {len(devices)} GPUs for TP {tp}"
            devices_per_file.setdefault(path, []).append(devices)
    for path, sets in devices_per_file.items():  # servers meant to share one node share no GPU
        assert sum(len(s) for s in sets) == len(set().union(*sets)), f"{path.name}: GPUs overlap: {sets}"


def test_the_tensor_parallel_rule_refuses_llama_70b_in_bf16_on_two_gpus() -> None:
    """The README's former advice, which left no KV cache at all."""
    weights_gb = PARAMETERS_B["meta-llama/Llama-3.3-70B-Instruct"] * 2.0
    assert GPU_GB * VLLM_SHARE - OVERHEAD_GB - weights_gb / 2 < 0


def _recipe_models() -> set[str]:
    names = set()
    for path in sorted((ROOT / "recipes").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for spec in (data or {}).get("models", {}).values() if isinstance(data, dict) else []:
            if isinstance(spec, dict) and spec.get("backend") == "openai":
                names.add(spec["model"])
    return (
        names
        | {c.split()[1] for _, c in _serve_commands() if not c.startswith("CUDA")}
        | {shlex.split(c)[2] for _, c in _serve_commands() if c.startswith("CUDA")}
    )


def test_every_served_model_of_the_recipes_and_readme_gets_its_familys_parser() -> None:
    named = _recipe_models()
    assert {
        "Qwen/Qwen2.5-72B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "google/gemma-3-27b-it",
    } <= named
    unknown = sorted(named - set(EXPECTED_PARSERS))
    assert unknown == [], f"say which parser these are served with in EXPECTED_PARSERS: {unknown}"
    assert {model: vllm_tool_parser(model) for model in EXPECTED_PARSERS} == EXPECTED_PARSERS
    assert vllm_tool_parser("my-org/some-new-model") is None


def test_a_model_directory_is_served_with_the_parser_of_the_format_it_records(tmp_path: Path) -> None:
    from datagen.llm.embedded import write_tool_format

    model_dir = tmp_path / "qwen2.5-7b-xlam-tuned"  # the name says Qwen; the marker says xLAM
    model_dir.mkdir()
    write_tool_format(model_dir, "xlam")
    assert vllm_tool_parser(str(model_dir)) == "xlam"


def test_every_parser_we_name_is_one_vllm_has() -> None:
    from vllm.tool_parsers import ToolParserManager

    named = {family.parser for family in FAMILIES} | set(VLLM_PARSER_FOR_FORMAT.values())
    missing = sorted(name for name in named if name not in ToolParserManager.list_registered())
    assert missing == []


def _fake_python(tmp_path: Path) -> Path:
    """The real interpreter, except that starting the server prints its arguments instead."""
    wrapper = tmp_path / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "vllm.entrypoints.openai.api_server" ]; then shift 2; echo "$@"; exit 0; fi\n'
        f'exec {shlex.quote(sys.executable)} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def _serve(tmp_path: Path, model: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    environment.update({"PYTHON": str(_fake_python(tmp_path)), "TOOL_PARSER": "", **env})
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "serve_vllm.sh"), model, "--port", "8123"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def _renamed_copy(model: Path, target: Path) -> Path:
    """``model``'s files under another name, without our format marker (so the name decides)."""
    target.mkdir()
    for item in model.iterdir():
        if item.name != "apigen_mt.json":
            (target / item.name).symlink_to(item)
    return target


def _parser_flag(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr[-2000:]
    args = done.stdout.split()
    return args[args.index("--tool-call-parser") + 1]


@pytest.mark.parametrize(
    ("name", "env", "parser"),
    [("Llama-3.2-tiny", {}, "llama3_json"), ("Llama-3.2-tiny", {"TOOL_PARSER": "pythonic"}, "pythonic")],
)
def test_serve_vllm_sh_picks_the_familys_parser_unless_told(
    embedded_model: Path, tmp_path: Path, name: str, env: dict[str, str], parser: str
) -> None:
    model_dir = _renamed_copy(embedded_model, tmp_path / name)  # the embedded weights, a Llama 3 name
    assert _parser_flag(_serve(tmp_path, str(model_dir), **env)) == parser


def test_serve_vllm_sh_falls_back_to_hermes_for_an_unknown_family_and_says_so(
    embedded_model: Path, tmp_path: Path
) -> None:
    done = _serve(tmp_path, str(_renamed_copy(embedded_model, tmp_path / "some-new-model")))
    assert _parser_flag(done) == "hermes"
    assert "set TOOL_PARSER" in done.stderr and "hermes for now" in done.stderr
