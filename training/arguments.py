"""Our part of a training recipe: the data mixture, the chat template and what happens after training.

Parsed by ``TrlParser`` next to TRL's ``SFTConfig`` (``DPOConfig``, ``GRPOConfig``) and ``ModelConfig``;
a recipe key that none of the three knows is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from training.mixture import SourceConfig


@dataclass
class ModelScriptArguments:
    """What every entry point (SFT, DPO, GRPO) asks of the model side: the chat template and the merge."""

    template: str = field(
        default="smollm2",
        metadata={
            "help": "Chat template: smollm2, qwen2.5, llama3, xlam, or a .jinja file (then set tool_format)."
        },
    )
    tool_format: str | None = field(
        default=None, metadata={"help": "Tool-call format of a custom template (hermes, xlam, llama3, ...)."}
    )
    merge_lora: bool = field(
        default=False,
        metadata={
            "help": "With use_peft: also save the base model with the adapter merged in, under <output_dir>/merged."
        },
    )


@dataclass
class ScriptArguments(ModelScriptArguments):
    """Our keys of an SFT recipe (and, through :class:`training.dpo.DPOScriptArguments`, of a DPO one):
    the data mixture and how examples are made, beside the template and merge settings."""

    # The layout `dataset_path` is read in: SFT trains on conversations, DPO on preference pairs.
    DATASET_PATH_LAYOUT: ClassVar[str] = "messages"

    sources: list[dict[str, Any]] = field(
        default_factory=list,
        metadata={
            "help": "Training data, set in the recipe YAML: a list of {path, layout (messages|sharegpt|xlam60k; preference for DPO), "
            "name, split, data_files, weight}. A path is a saved dataset dir (e.g. `apigen-mt export` output), a "
            ".json/.jsonl file, or a Hub dataset id."
        },
    )
    dataset_path: str | None = field(
        default=None,
        metadata={
            "help": "Shortcut for the command line: train on this one source (layout `messages`, or `preference` for DPO; e.g. the output of "
            "`apigen-mt export`) instead of the recipe's `sources`."
        },
    )
    per_turn_examples: bool = field(
        default=False,
        metadata={
            "help": "One example per assistant turn with the history as context (filtered behavioural cloning). "
            "With `assistant_only_loss` and a template that renders history the same at every turn (all shipped "
            "ones but qwen3), `false` trains the same turns on the same contexts in one sequence per dialogue, "
            "at 1/k of the prompt tokens; `true` is needed where history renders differently (qwen3's reasoning)."
        },
    )
    test_split_size: float | None = field(
        default=None,
        metadata={"help": "Hold out this fraction (or count, if >= 1) of examples for evaluation."},
    )

    def __post_init__(self) -> None:
        # YAML gives dicts; validating here makes a typo in a source an error at parse time.
        if self.dataset_path is not None:
            self.sources = [{"path": self.dataset_path, "layout": self.DATASET_PATH_LAYOUT}]
        self.sources = [
            source if isinstance(source, SourceConfig) else SourceConfig.model_validate(source)
            for source in self.sources
        ]
