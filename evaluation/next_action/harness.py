"""The next-action harness: every assistant turn of every held-out dialogue is one job of the batch
layer, all submitted at once so the engine batches them; each finished turn is one row, so a killed
evaluation resumes where it stopped, and a turn whose code raised is one error row.

A job gives the model the gold prefix (system prompt with the policy, the tools, the messages so far)
and lets it write one turn; the runtime decodes it in the model's tool-call format. The row keeps the
gold turn, the raw output, the decoded calls and the figures of :mod:`evaluation.next_action.scoring`.
When the dialogue names its domain and seed, every predicted call is also executed: the gold prefix's
calls are replayed on a fresh environment of that seed, then the predicted calls run in order (an
environment never raises; an error observation marks the call as one that would fail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from datagen.envs.base import Domain
from datagen.joberrors import error_outcome
from datagen.llm.base import ModelUnavailableError
from datagen.rundir import JsonlAppender, NextActionRun, read_rows
from datagen.runner.batch import Batch, Job
from datagen.simulate.build import Models, episode_seed
from evaluation.next_action.config import NextActionConfig
from evaluation.next_action.data import Dialogue, Turn, gold_calls, turns_of
from evaluation.next_action.scoring import score_turn, summarize

log = logging.getLogger(__name__)


class DomainCache:
    """Domains by name, each loaded once; a name that cannot be loaded means no environment check."""

    def __init__(self, load: Callable[[str], Domain]):
        self._load = load
        self._found: dict[str, Domain | None] = {}

    def get(self, name: str | None) -> Domain | None:
        if not name:
            return None
        if name not in self._found:
            try:
                self._found[name] = self._load(name)
            except Exception as exc:  # a dataset from a domain this install lacks: scored without it
                log.warning(
                    "domain %r cannot be loaded (%s); its turns are scored without the environment", name, exc
                )
                self._found[name] = None
        return self._found[name]


def environment_failures(
    domain: Domain, dialogue: Dialogue, turn: Turn, calls: list[dict[str, Any]]
) -> list[bool]:
    """For each predicted call: whether it returns an error observation after the gold prefix's calls."""
    assert dialogue.seed is not None
    env = domain.new_env(dialogue.seed)
    for message in turn.prefix:
        for call in gold_calls(message):
            env.call(call)
    return [not env.call(call).ok for call in calls]


class NextActionHarness:
    def __init__(
        self,
        config: NextActionConfig,
        dialogues: list[Dialogue],
        out: NextActionRun,
        models: Models,
        domains: Callable[[str], Domain],
        rows_skipped: int = 0,
    ):
        self.config = config
        self.rows_skipped = rows_skipped  # damaged data rows left out (named when they were read)
        self.turns = [turn for d in dialogues for turn in turns_of(d)]
        self.out = out
        self.models = models
        self.domains = DomainCache(domains)

    @property
    def model_name(self) -> str:
        return self.models.get(self.config.agent.model).name

    async def run(self, on_turn: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        done = {row["key"] for row in read_rows(self.out.turns) if isinstance(row.get("key"), str)}
        with JsonlAppender(self.out.turns) as out:

            def record(job: Job[Turn], row: dict[str, Any]) -> None:
                out.write(row)
                if on_turn:
                    on_turn(row)

            def record_error(job: Job[Turn], exc: BaseException) -> None:
                record(job, self._error_row(job.payload, exc))

            async with Batch(
                self.run_turn,
                concurrency=self.config.concurrency,
                record=record,
                record_error=record_error,
                done=done,
                stop_on=(ModelUnavailableError,),
                name="next-action",
            ) as batch:
                batch.submit_all(Job(turn.key, turn) for turn in self.turns)
        keys = {turn.key for turn in self.turns}
        rows = [row for row in read_rows(self.out.turns) if row.get("key") in keys]
        summary = {
            "model": self.model_name,
            "data": self.config.data,
            "split": self.config.split,
            "dialogues": len({turn.dialogue.source + "::" + turn.dialogue.id for turn in self.turns}),
            "rows_skipped": self.rows_skipped,
            "turns_planned": len(self.turns),
            "turns_done": len(rows),
            **summarize(rows),
        }
        self.out.write_summary(summary)
        return summary

    def _identity(self, turn: Turn) -> dict[str, Any]:
        return {
            "key": turn.key,
            "source": turn.dialogue.source,
            "dialogue_id": turn.dialogue.id,
            "blueprint_id": turn.dialogue.blueprint_id,
            "env": turn.dialogue.env,
            "index": turn.index,
            "gold_calls": gold_calls(turn.gold),
            "gold_content": turn.gold.get("content") or "",
        }

    def _error_row(self, turn: Turn, exc: BaseException) -> dict[str, Any]:
        outcome = error_outcome(exc, f"next-action turn {turn.key}")
        return {**self._identity(turn), "error": outcome["checks"]["error"]}

    async def run_turn(self, turn: Turn) -> dict[str, Any]:
        role = self.config.agent
        result = await self.models.get(role.model).chat(
            turn.prefix,
            tools=turn.dialogue.tools or None,
            temperature=role.temperature,
            max_tokens=role.max_tokens,
            seed=episode_seed(self.config.seed, turn.key, 0),
        )
        choice = result.first
        identity = self._identity(turn)
        scores = score_turn(identity["gold_calls"], choice)
        predicted = list(choice.tool_calls) if scores["decoded"] else []
        failed: list[bool] | None = None
        domain = self.domains.get(turn.dialogue.env)
        if predicted and domain is not None and turn.dialogue.seed is not None:
            failed = environment_failures(domain, turn.dialogue, turn, predicted)
        return {
            **identity,
            **scores,
            "raw": choice.raw,
            "content": choice.content,
            "predicted_calls": [{"name": c["name"], "arguments": c["arguments"]} for c in choice.tool_calls],
            "parse_error": None
            if choice.parse_error is None
            else {"kind": choice.parse_error.kind, "message": choice.parse_error.message},
            "finish_reason": choice.finish_reason,
            "env_failed": None if failed is None else any(failed),
            "env_failed_calls": failed,
            "usage": {
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
            },
        }
