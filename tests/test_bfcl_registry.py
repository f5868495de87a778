"""Folders named after BFCL's registered models score as BFCL scores them, whatever picks the decoder.

Each fixture is a result folder laid out as BFCL's runner lays it out (no run metadata), its rows
the answer keys' calls (every third with a wrong-typed value) written the way the model's family
writes them, with the function names the model was given (dots as underscores where BFCL's registry
says ``underscore_to_dot``). Our score is held to the official decode + checker with the model's own
handler class and flag (evaluation/bfcl/official.py).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("bfcl_eval", "tree_sitter_java", "overrides")),
    reason="needs bfcl-eval (BFCL data and handlers) and the official checker's light deps",
)

from cli_runs import run_json  # noqa: E402

from datagen.rundir import BfclRun  # noqa: E402
from evaluation.bfcl import cli, registry, resolve, results, synthetic  # noqa: E402


def _rows(category: str, fmt: str, underscore: bool, stride: int = 1) -> list[dict]:
    """Gold calls, every third item with a wrong-typed value, in the format's own shape."""
    gold = synthetic.results_for(category, "gold", fmt, underscore_names=underscore, stride=stride)
    wrong = synthetic.results_for(category, "wrong_type", fmt, underscore_names=underscore, stride=stride)
    return [w if i % 3 == 2 else g for i, (g, w) in enumerate(zip(gold, wrong, strict=True))]


def _folder(root: Path, model: str, category: str, rows: list[dict]) -> Path:
    folder = root / registry.bfcl_registry()[model].folder
    results.write_results(BfclRun.result_file(folder / "group", category), rows)
    return folder


def _official_correct(model: str, category: str, rows: list[dict]) -> int:
    """How many rows BFCL's own runner counts correct with the model's handler class and flag."""
    from evaluation.bfcl.official import OfficialScorer

    entry = registry.bfcl_registry()[model]
    spec = registry.handler_classes()[entry.handler].spec
    scorer = OfficialScorer(
        registry.model_decoder(entry), "registry", handler=spec, underscore=entry.underscore_to_dot
    )
    prompts, answers = scorer.entries(category)
    position = {p["id"]: i for i, p in enumerate(prompts)}
    return sum(
        scorer.verdict(category, prompts[position[r["id"]]], r["result"], answers[position[r["id"]]])
        for r in rows
    )


def _scored(folder: Path, env: dict[str, str], *flags: str) -> dict:
    """`apigen-mt eval bfcl-score FOLDER --json` as a user runs it; the printed scores."""
    out = folder.parent / f"score{len(flags)}"
    return run_json(["eval", "bfcl-score", str(folder), "--json", "--out", str(out), *flags], env)


def test_granite_java_scores_the_same_with_its_format_given(tmp_path, plain_env):
    """granite-20b-functioncalling is registered with underscore_to_dot: naming its format must not
    drop the rule (the leaderboard's 66/100 on simple_java fell to 2/100 that way)."""
    model = "ibm-granite/granite-20b-functioncalling"
    rows = _rows("simple_java", "granite", underscore=True)
    folder = _folder(tmp_path, model, "simple_java", rows)
    by_folder, given = _scored(folder, plain_env), _scored(folder, plain_env, "--result-format", "granite")
    expected = _official_correct(model, "simple_java", rows)
    assert expected > 50
    for scores in (by_folder, given):
        assert scores["counts"]["simple_java"]["correct"] == expected
        assert scores["underscore_to_dot"]["value"] is True
        assert "BFCL's registry" in scores["underscore_to_dot"]["source"]
    assert given["decoder"]["source"] == "--result-format"
    # The explicit override wins, and is recorded.
    plain = _scored(folder, plain_env, "--result-format", "granite", "--no-underscore-to-dot")
    assert plain["underscore_to_dot"] == {"value": False, "source": "--no-underscore-to-dot"}
    assert plain["counts"]["simple_java"]["correct"] < 10


def test_a_gemini_fc_folder_keeps_items_with_dotted_names(tmp_path, plain_env):
    model = "gemini-2.5-flash-FC"
    rows = _rows("simple_python", "gemini", underscore=True, stride=4)
    folder = _folder(tmp_path, model, "simple_python", rows)
    scores = _scored(folder, plain_env)
    assert scores["decoder"]["format"] == "gemini" and scores["underscore_to_dot"]["value"] is True
    assert scores["counts"]["simple_python"]["correct"] == _official_correct(model, "simple_python", rows)
    verdicts = [json.loads(line) for line in (folder.parent / "score0" / "verdicts.jsonl").open()]
    dotted = {r["id"] for r in rows if any("_" in name and "." not in name for name in _names(r["result"]))}
    assert any(v["valid"] for v in verdicts if v["id"] in dotted)


def _names(result: list[dict]) -> list[str]:
    return [name for call in result for name in call]


def test_a_cohere_fc_folder_is_decoded_as_cohere(tmp_path, plain_env):
    """Cohere stores [{"tool_name", "parameters"}]: sniffing read none of it (0/16 on live_parallel)."""
    model = "command-a-03-2025-FC"
    rows = _rows("live_parallel", "cohere", underscore=True)
    folder = _folder(tmp_path, model, "live_parallel", rows)
    scores = _scored(folder, plain_env)
    assert scores["decoder"] == {
        **scores["decoder"],
        "format": "cohere",
        "source": "folder name",
        "underscore_names": True,
    }
    expected = _official_correct(model, "live_parallel", rows)
    assert scores["counts"]["live_parallel"] == {"correct": expected, "total": 16, "partial": False}
    assert expected >= 10


def test_a_registered_family_without_a_decoder_is_refused(tmp_path, monkeypatch, capsys):
    """Should a bfcl-eval add a family we cannot decode, its folders exit 2 naming the handler and
    the formats to try, unless a format is given."""
    rows = _rows("live_parallel", "cohere", underscore=True)
    folder = _folder(tmp_path, "command-a-03-2025-FC", "live_parallel", rows)
    monkeypatch.setattr(resolve, "model_decoder", lambda model: None)
    assert cli.score_main([str(folder), "--out", str(tmp_path / "refused")]) == 2
    error = capsys.readouterr().err
    assert "CohereHandler" in error and "--result-format" in error and "cohere (" in error
    assert not (tmp_path / "refused").exists()
    assert cli.score_main([str(folder), "--result-format", "cohere", "--out", str(tmp_path / "given")]) == 0


def test_every_registered_handler_family_has_a_decoder():
    missing = {m.handler for m in registry.bfcl_registry().values() if registry.model_decoder(m) is None}
    assert not missing, f"BFCL handler classes without a decoder: {sorted(missing)}"


def test_api_handlers_decode_by_their_registered_mode():
    assert registry.decoder_for_handler("OpenAIResponsesHandler", True) == "json"
    assert registry.decoder_for_handler("OpenAIResponsesHandler", False) == "python"
    assert registry.decoder_for_handler("GeminiHandler", True) == "gemini"
    assert registry.decoder_for_handler("GeminiHandler", False) == "gemini_prompt"
    # GoGoAgent's __init__ turns FC off whatever the registry says; Cohere's turns it on.
    assert registry.decoder_for_handler("GoGoAgentHandler", True) == "python"
    assert registry.effective_mode("CohereHandler", False) is True
