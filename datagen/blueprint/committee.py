"""The review committee (Stage 2/3 of the paper): N judges score a validated task, majority vote per
metric, accept when the voted average clears the threshold.

A judge reply that cannot be read as a verdict abstains (it is recorded, and does not vote); a
committee with no readable verdict rejects, because nothing vouched for the task.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any

from datagen.blueprint.proposal import ask, render_prompt
from datagen.blueprint.validators import extract_json_object
from datagen.llm.types import ChatModel, Usage
from datagen.recipe.datagen import ModelConfig

METRICS = ("correctness", "completeness", "satisfaction", "creativity")


def judge_json_schema() -> dict[str, Any]:
    score = {"type": "integer", "enum": [0, 1]}
    return {
        "type": "object",
        "properties": {
            # bounded so a looping model still reaches the scores within max_tokens
            "reflection": {"type": "string", "maxLength": 500},
            **{m: score for m in METRICS},
            "correction": {"type": "string", "maxLength": 300},
        },
        "required": ["reflection", *METRICS, "correction"],
    }


@dataclass
class JudgeVerdict:
    judge: str
    valid: bool
    scores: dict[str, int] = field(default_factory=dict)
    reflection: str = ""
    correction: str = ""
    error: str = ""


_YES = {"1", "yes", "true", "pass"}
_NO = {"0", "no", "false", "fail"}


def _score(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _YES | _NO:
        return 1 if value.strip().lower() in _YES else 0
    return None


def parse_verdict(text: str, judge: str) -> JudgeVerdict:
    try:
        payload = extract_json_object(text)
    except ValueError as exc:
        return JudgeVerdict(judge, False, error=str(exc)[:300])
    scores = {m: _score(payload.get(m)) for m in METRICS}
    missing = [m for m, s in scores.items() if s is None]
    if missing:
        return JudgeVerdict(
            judge,
            False,
            error=f"expected 0/1 scores for {', '.join(missing)}; found "
            f"{ {m: payload.get(m) for m in missing} }",
        )
    return JudgeVerdict(
        judge,
        True,
        {m: int(s) for m, s in scores.items() if s is not None},
        str(payload.get("reflection", ""))[:1000],
        str(payload.get("correction", ""))[:1000],
    )


@dataclass
class CommitteeDecision:
    ok: bool
    voted: dict[str, int]
    average: float
    threshold: float
    verdicts: list[JudgeVerdict]
    reasons: list[str]

    def record(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "voted": self.voted,
            "average": self.average,
            "threshold": self.threshold,
            "verdicts": [asdict(v) for v in self.verdicts],
        }


def vote(verdicts: list[JudgeVerdict], threshold: float) -> CommitteeDecision:
    """Majority per metric over readable verdicts (a tie is a no), then the average against ``threshold``."""
    valid = [v for v in verdicts if v.valid]
    if not valid:
        errors = "; ".join(v.error for v in verdicts if v.error)[:500]
        return CommitteeDecision(
            False,
            dict.fromkeys(METRICS, 0),
            0.0,
            threshold,
            verdicts,
            [f"no judge returned a readable verdict ({errors})"],
        )
    voted = {m: int(sum(v.scores[m] for v in valid) * 2 > len(valid)) for m in METRICS}
    average = sum(voted.values()) / len(METRICS)
    ok = average >= threshold
    reasons: list[str] = []
    if not ok:
        for metric in (m for m in METRICS if not voted[m]):
            reasons.append(f"judges voted no on {metric}")
        for v in valid:
            failed = [m for m in METRICS if not v.scores[m]]
            if failed:
                reasons.append(
                    f"{v.judge} ({', '.join(failed)}): {v.reflection} Suggested correction: {v.correction}".strip()
                )
    return CommitteeDecision(ok, voted, average, threshold, verdicts, reasons)


@dataclass
class Judge:
    label: str
    model: ChatModel
    config: ModelConfig


async def review(
    judges: list[Judge],
    system: str,
    task: dict[str, Any],
    diff: list[str],
    *,
    threshold: float,
    temperature: float,
    max_tokens: int,
    json_output: bool,
    seed: int | None,
) -> tuple[CommitteeDecision, Usage]:
    """Every judge sees the same task, tools (in the shared system prompt) and diff, concurrently."""
    user = render_prompt(
        "judge_task",
        persona=task["persona"],
        instruction=task["instruction"],
        actions=task["actions"],
        outputs=task["outputs"],
        diff=diff,
    )
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    schema = judge_json_schema() if json_output else None
    replies = await asyncio.gather(
        *[
            ask(
                j.model,
                messages,
                j.config,
                json_schema=schema,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=None if seed is None else seed + i,
            )
            for i, j in enumerate(judges)
        ]
    )
    usage = Usage()
    verdicts = []
    for judge, reply in zip(judges, replies, strict=True):
        usage.add(reply.usage)
        verdicts.append(parse_verdict(reply.text, judge.label))
    return vote(verdicts, threshold), usage
