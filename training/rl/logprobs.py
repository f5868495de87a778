"""Does the engine sample from the policy the trainer is training? The check made after every rollout.

A generator other than the trainer's own model (the colocated vLLM engine, :mod:`training.rl.engine`)
reports the log-probability it sampled each policy token with. The trainer recomputes the same
tokens' log-probabilities with its current weights (same temperature), and the gap between the two,
``|log p_engine - log p_trainer|`` over the policy's own tokens, is logged as
``rollout/logprob_gap`` (mean) and ``rollout/logprob_gap_max``, as TRL and verl log theirs: a stale
engine (weights not synced), another dtype or kernel, or a wrong sampling setting shows here first.

Optionally the tokens the engine sampled too far from the trainer's distribution leave the loss
(``logprob_mask``): the idea of TRL's ``vllm_importance_sampling_correction`` in its masking form
(tokens whose importance ratio falls outside a band get no gradient), written here for episodes:
by token (``|log ratio|`` above ``max_log_ratio``) or by episode (its mean ``|log ratio|`` above it, so
one dialogue whose sampler drifted is dropped whole). The mask enters TRL through ``env_mask``, the
public way to keep tokens out of the loss. The ratio's value is not multiplied into the loss: TRL
applies that only to its own vLLM path, and within the band the ratio is close to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LogprobMask(BaseModel):
    """``logprob_mask:`` of a GRPO recipe (module docstring)."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["token", "sequence"] = "token"
    max_log_ratio: float = Field(
        0.7, gt=0, description="largest |log p_engine - log p_trainer| kept (0.7: a ratio within [1/2, 2])"
    )


@dataclass
class GapReport:
    """The gap over one rollout's episodes, and the policy masks after ``logprob_mask``."""

    gaps: list[list[float]]  # per episode: |log p_engine - log p_trainer| of each policy token
    masks: list[list[int]]
    masked_tokens: int = 0
    masked_episodes: int = 0
    policy_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.policy_tokens = sum(len(g) for g in self.gaps)

    def metrics(self) -> dict[str, float]:
        every = [g for episode in self.gaps for g in episode]
        if not every:
            return {}
        return {
            "rollout/logprob_gap": sum(every) / len(every),
            "rollout/logprob_gap_max": max(every),
            "rollout/masked_token_share": self.masked_tokens / len(every),
        }


def policy_gaps(sampled: Sequence[float], recomputed: Sequence[float], mask: Sequence[int]) -> list[float]:
    """``|sampled - recomputed|`` on the policy's tokens (mask 1), in order."""
    if not len(sampled) == len(recomputed) == len(mask):
        raise ValueError(
            f"expected one log-probability per completion token, found {len(sampled)} sampled, "
            f"{len(recomputed)} recomputed for {len(mask)} tokens"
        )
    return [abs(s - r) for s, r, m in zip(sampled, recomputed, mask, strict=True) if m]


def apply_mask(mask: Sequence[int], gaps: Sequence[float], rule: LogprobMask | None) -> list[int]:
    """``mask`` with the policy tokens ``rule`` drops set to 0 (``gaps``: one per policy token)."""
    kept = list(mask)
    if rule is None or not gaps:
        return kept
    if rule.level == "sequence":
        return [0] * len(kept) if sum(gaps) / len(gaps) > rule.max_log_ratio else kept
    policy_positions = [i for i, m in enumerate(kept) if m]
    for position, gap in zip(policy_positions, gaps, strict=True):
        if gap > rule.max_log_ratio:
            kept[position] = 0
    return kept


def compare(
    sampled: list[list[float]],
    recomputed: list[list[float]],
    masks: list[list[int]],
    rule: LogprobMask | None = None,
) -> GapReport:
    """The gap of every episode and the masks ``rule`` leaves."""
    gaps = [policy_gaps(s, r, m) for s, r, m in zip(sampled, recomputed, masks, strict=True)]
    kept = [apply_mask(m, g, rule) for m, g in zip(masks, gaps, strict=True)]
    dropped = [sum(m) - sum(k) for m, k in zip(masks, kept, strict=True)]
    return GapReport(
        gaps, kept, sum(dropped), sum(1 for d, m in zip(dropped, masks, strict=True) if d and d == sum(m))
    )


def trainer_logprobs(
    model: Any, prompt_ids: Sequence[int], completion_ids: Sequence[int], *, temperature: float, device: Any
) -> list[float]:
    """The log-probability ``model`` gives each completion token after the prompt, with logits divided
    by ``temperature`` as GRPO's loss computes them (one sequence; no gradient)."""
    import torch
    from trl.trainer.utils import selective_log_softmax

    n = len(completion_ids)
    if n == 0:
        return []
    ids = torch.tensor([list(prompt_ids) + list(completion_ids)], device=device)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=n + 1).logits
        logits = logits[:, :-1, :][:, -n:, :] / temperature
        return selective_log_softmax(logits.float(), ids[:, -n:])[0].tolist()


def trainer_side(trainer: Any, prompts: list[list[int]], completions: list[list[int]]) -> list[list[float]]:
    """:func:`trainer_logprobs` of each episode with the trainer's model as it is now (the weights the
    engine was just given). One sequence per forward pass: every process has as many episodes, so
    ZeRO-3's gathers stay in step."""
    from trl.models.utils import disable_gradient_checkpointing

    with disable_gradient_checkpointing(trainer.model, trainer.args.gradient_checkpointing_kwargs):
        return [
            trainer_logprobs(
                trainer.model, p, c, temperature=trainer.temperature, device=trainer.accelerator.device
            )
            for p, c in zip(prompts, completions, strict=True)
        ]
