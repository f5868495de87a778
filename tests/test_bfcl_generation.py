"""`apigen-mt eval bfcl` stores each mode's raw results as BFCL's handler for that family stores them,
so that BFCL's own decoding and checker give the same verdicts on our files as our scorer."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bfcl_eval") is None, reason="needs bfcl-eval (BFCL data)"
)

from datagen.llm.types import Choice  # noqa: E402
from evaluation.bfcl import data, results  # noqa: E402
from evaluation.bfcl.generate import MODES, SCORE_FORMATS, RunSettings, _stored  # noqa: E402
from evaluation.bfcl.handlers import FORMATS  # noqa: E402

APIGEN = [sys.executable, "-c", "from datagen.cli import main; raise SystemExit(main())"]
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def _choice(raw: str, calls: list | None = None) -> Choice:
    return Choice(content="", tool_calls=calls or [], raw=raw, finish_reason="stop")


def test_every_mode_is_scored_by_a_bfcl_decoder():
    assert set(SCORE_FORMATS) == set(MODES) and set(SCORE_FORMATS.values()) <= set(FORMATS)
    with pytest.raises(ValueError, match="expected one of"):
        RunSettings(mode="qwen")


def test_results_are_stored_as_each_familys_handler_stores_them():
    hermes = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    thinking = "<think>\nParis, then.\n</think>\n\n"
    # Qwen-FC (qwen_fc.py) and Qwen prompt mode (qwen.py) keep the text after the reasoning block.
    assert _stored(_choice(thinking + hermes), RunSettings("hermes")) == hermes
    assert _stored(_choice(thinking + "[get_weather(city='Paris')]"), RunSettings("prompt")) == (
        "[get_weather(city='Paris')]"
    )
    # xLAM (salesforce_qwen.py) and Llama 3.1 (llama_3_1.py) store the text as it came.
    xlam = json.dumps([CALL])
    assert _stored(_choice(xlam), RunSettings("xlam")) == xlam
    assert _stored(_choice(thinking + xlam), RunSettings("xlam")) == thinking + xlam
    # The API FC handlers store [{name: arguments-json}], or the text when there is no call.
    assert _stored(_choice("", [CALL]), RunSettings("fc")) == [{"get_weather": '{"city": "Paris"}'}]
    assert _stored(_choice("No tool fits."), RunSettings("fc")) == "No tool fits."


@pytest.mark.slow
@pytest.mark.vllm
def test_every_mode_on_the_embedded_model_gets_bfcls_verdicts(vllm_server: str, tmp_path: Path):
    """The real CLI against one vLLM server, in every mode: BFCL's handler for the mode's family and
    its runner give each stored item the verdict our scorer gives it."""
    from evaluation.bfcl.official import OfficialScorer

    categories = ["simple_python", "live_simple", "live_irrelevance", "multi_turn_base"]
    for mode in MODES:
        out = tmp_path / mode
        proc = subprocess.run(
            [
                *APIGEN, "eval", "bfcl", "--model", "embedded", "--backend", "openai",
                "--base-url", vllm_server, "--prompt-mode", mode, "--categories", *categories,
                "--limit", "3", "--max-tokens", "64", "--out", str(out), "--result-name", f"embedded-{mode}",
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        fmt = results.read_metadata(out)["format"]
        assert fmt == SCORE_FORMATS[mode] and f"decoder {fmt}, strict" in proc.stderr
        verdicts = {
            v["id"]: v["valid"]
            for v in map(json.loads, (out / "score" / "verdicts.jsonl").read_text().splitlines())
        }
        official = OfficialScorer(fmt, f"generation-{mode}")
        files = results.find_result_files(out)
        assert set(files) == set(categories)
        for category, path in files.items():
            prompts, answers = official.entries(category)
            index = {p["id"]: k for k, p in enumerate(prompts)}
            for row in results.read_results(path):
                k = index[row["id"]]
                theirs = official.verdict(
                    category, prompts[k], row["result"], answers[k] if answers else None
                )
                assert verdicts[row["id"]] == theirs, (mode, row["id"], row["result"])
        if mode == "fc":
            rows = results.read_results(files["simple_python"])
            assert all(isinstance(r["result"], (list, str)) for r in rows)
        assert len(data.load_entries("multi_turn_base")) > 0
