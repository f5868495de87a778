"""The model card embeds the SFT recipe and command line and is pushed with the model: neither may
carry a credential (apigen_rules/redact.py, the copy of apigen_rules/redact.py that training may import)."""

from __future__ import annotations

from pathlib import Path

from apigen_rules.redact import REDACTED

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_NeverWrittenToken7731"


def test_the_model_card_never_carries_a_recipe_or_command_line_credential(tmp_path: Path):
    from training.chat_templates import SHIPPED_TEMPLATES
    from training.mixture import SourceConfig, build_mixture
    from training.model_card import render_model_card
    from training.sft import parse_args

    recipe = ROOT / "recipes" / "sft" / "smollm2-135m" / "cpu_lora.yaml"
    copied = tmp_path / "recipe.yaml"
    copied.write_text(recipe.read_text() + f"\nhub_token: {TOKEN}\n")
    _, report = build_mixture(
        [
            SourceConfig(
                path=str(ROOT / "tests" / "data" / "training_sharegpt_sample.json"), layout="sharegpt"
            )
        ],
        seed=0,
    )
    script_args, training_args, model_args = parse_args(["--config", str(recipe)])
    command = ["--config", str(copied), "--hub_token", TOKEN]
    card = render_model_card(
        script_args,
        training_args,
        model_args,
        SHIPPED_TEMPLATES["smollm2"],
        report,
        {},
        str(copied),
        False,
        command,
    )
    assert TOKEN not in card
    assert f"hub_token: {REDACTED}" in card and f"--hub_token {REDACTED}" in card
