"""Generate BFCL result files with the toolkit's LLM runtime: every item (every memory scenario) is a
job of the batch layer, and its row lands in its category's result file the moment it finishes, so a
killed run resumes with ``--resume``, nothing lost and nothing done twice.

Modes (``--prompt-mode``, the recipe's ``format``), each storing raw results the way BFCL's handler
for that family stores them, so that ``bfcl evaluate`` and ``bfcl-score`` read our files as they read the leaderboard's:

* ``fc`` — native tool calling (OpenAI tool schema); results stored as BFCL's API FC handlers
  store them (a list of ``{name: arguments-json}``, or the text when no call), decoded as
  ``json``. Dots in function names become underscores, as OpenAI-style APIs require.
* ``prompt`` — BFCL-style prompting: the functions in the system prompt, the model answers with
  Python-call syntax; the text is stored (after a reasoning block, as BFCL's Qwen and DeepSeek
  reasoning handlers keep it) and decoded as ``python``.
* ``hermes`` — Qwen-FC / Hermes ``<tool_call>`` blocks; stored as ``qwen_fc.py`` stores them (the
  text after ``</think>``), decoded as ``hermes``.
* ``xlam`` / ``llama3`` — xLAM's JSON list, Llama 3.1's JSON; the raw text is stored, as
  ``salesforce_qwen.py`` and ``llama_3_1.py`` do, decoded as ``xlam`` / ``llama3``.
* ``python`` — the runtime's Python-call tool format (tools rendered by the chat template);
  stored like ``prompt``, decoded as ``python``.

Multi-turn: per turn the model steps until it stops calling; calls run on the entry's official
backend classes (:class:`multi_turn.Backends`), results go back as tool messages; more than 20
executed steps in a turn ends the entry (it then fails for having too few turns); held-out
functions are added at their turn with a short user message.

Memory (:mod:`memory`): the same loop on the memory backend, with BFCL's memory instruction as the
system prompt; per scenario the pre-requisite conversations run in order (each flushes the memory
snapshot the next one loads), then the scenario's questions run concurrently.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.joberrors import error_message
from datagen.llm.base import ModelUnavailableError
from datagen.llm.formats import is_broken
from datagen.rundir import BfclRun, JsonlAppender, read_rows
from datagen.runner.batch import Batch, BatchCounts, Job
from datagen.runner.executor import LOCAL, Executor
from evaluation.bfcl import data, memory, results, tools
from evaluation.bfcl.decode import DecodeError
from evaluation.bfcl.multi_turn import STEP_LIMIT, Backends, Call, decode_step

log = logging.getLogger(__name__)

RUNTIME_FORMATS = ("hermes", "xlam", "llama3", "python")
MODES = ("fc", "prompt", *RUNTIME_FORMATS)
# The decoder (evaluation/bfcl/handlers) that reads each mode's stored results.
SCORE_FORMATS = {
    "fc": "json",
    "prompt": "python",
    "hermes": "hermes",
    "xlam": "xlam",
    "llama3": "llama3",
    "python": "python",
}
# Modes whose BFCL handlers keep only the text after a reasoning block (qwen.py, qwen_fc.py,
# deepseek_reasoning.py); xLAM's and Llama 3.1's handlers store the text as it came.
_DROPS_REASONING = ("prompt", "hermes", "python")


@dataclass(frozen=True)
class RunSettings:
    mode: str
    max_tokens: int = 512
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"unknown BFCL generation mode {self.mode!r}; expected one of: {', '.join(MODES)}"
            )

    @property
    def tool_format(self) -> str:
        return {"fc": "openai", "prompt": "auto"}.get(self.mode, self.mode)

    @property
    def score_format(self) -> str:
        return SCORE_FORMATS[self.mode]

    @property
    def underscore_names(self) -> bool:
        return self.mode == "fc"


def _request(
    entry_functions: list[dict], messages: list[dict], settings: RunSettings
) -> tuple[list[dict], list[dict] | None]:
    """(messages, tools) for one model call in the run's mode."""
    if settings.mode == "prompt":
        return tools.with_system_prompt(messages, tools.prompt_mode_system(entry_functions)), None
    return messages, tools.openai_tools(entry_functions, settings.underscore_names)


def after_reasoning(text: str) -> str:
    """The answer after a reasoning block, as BFCL's reasoning-model handlers store it."""
    return text.split("</think>")[-1].lstrip("\n") if "</think>" in text else text


def _stored(choice: Any, settings: RunSettings) -> Any:
    """The raw result as BFCL's handler for the mode's family stores it (see the module docs)."""
    if settings.mode == "fc":
        # A message whose tool calls do not all decode is not a list of calls: BFCL's FC handlers fail
        # to decode it and run nothing (datagen.llm.formats: nothing runs from a broken message).
        if choice.tool_calls and not is_broken(choice.parse_error):
            return [{call["name"]: json.dumps(call["arguments"])} for call in choice.tool_calls]
        return choice.raw
    if settings.mode in _DROPS_REASONING:
        return after_reasoning(choice.raw)
    return choice.raw


async def _ask(model: Any, messages: list[dict], tool_list: list[dict] | None, settings: RunSettings) -> Any:
    result = await model.chat(
        messages, tools=tool_list, max_tokens=settings.max_tokens, temperature=settings.temperature
    )
    return result


async def run_single_turn(model: Any, entry: data.Entry, settings: RunSettings) -> dict[str, Any]:
    functions = tools.functions_for_model(entry)
    messages, tool_list = _request(functions, entry.question[0], settings)
    started = time.perf_counter()
    result = await _ask(model, messages, tool_list, settings)
    return {
        "id": entry.id,
        "result": _stored(result.first, settings),
        "input_token_count": result.usage.prompt_tokens,
        "output_token_count": result.usage.completion_tokens,
        "latency": round(time.perf_counter() - started, 3),
    }


def _assistant_and_tool_messages(
    raw: Any, calls: list[Call], outputs: list[str], step_id: str, settings: RunSettings
) -> list[dict]:
    if settings.mode == "prompt":
        observed = [{"function": c.render(), "result": o} for c, o in zip(calls, outputs, strict=False)]
        return [
            {"role": "assistant", "content": raw},
            {"role": "user", "content": "Function results:\n" + json.dumps(observed, indent=1)},
        ]
    ids = [f"{step_id}_{n}" for n in range(len(calls))]
    assistant = {
        "role": "assistant",
        "content": "" if settings.mode == "fc" else raw,
        "tool_calls": [
            {
                "id": i,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.kwargs, default=repr)},
            }
            for i, c in zip(ids, calls, strict=False)
        ],
    }
    return [
        assistant,
        *(
            {"role": "tool", "tool_call_id": i, "name": c.name, "content": o}
            for i, c, o in zip(ids, calls, outputs, strict=False)
        ),
    ]


async def run_multi_turn(model: Any, entry: data.Entry, settings: RunSettings) -> dict[str, Any]:
    backends = Backends(entry)
    functions = tools.functions_for_model(entry)
    questions = entry.question
    if memory.is_memory(entry):
        questions = memory.with_memory_prompt(entry, backends.only_instance())
    messages: list[dict] = []
    turns: list[list[Any]] = []
    started = time.perf_counter()
    for turn, question in enumerate(questions):
        if turn in entry.missed_functions:
            functions = functions + entry.missed_functions[turn]
            question = [{"role": "user", "content": tools.held_out_message(entry.missed_functions[turn])}]
        messages.extend(question)
        steps: list[Any] = []
        executed, force_quit = 0, False
        while True:
            request, tool_list = _request(functions, messages, settings)
            result = await _ask(model, request, tool_list, settings)
            raw = _stored(result.first, settings)
            steps.append(raw)
            try:
                calls = decode_step(raw, settings.score_format, tool_list)
            except DecodeError:
                calls = []
            if not calls:
                messages.append({"role": "assistant", "content": result.first.content or result.first.raw})
                break
            if settings.underscore_names:
                calls = [Call(_original_name(c.name, functions), c.kwargs) for c in calls]
            outputs = backends.execute(calls)
            messages.extend(
                _assistant_and_tool_messages(raw, calls, outputs, f"t{turn}s{executed}", settings)
            )
            executed += 1
            if executed > STEP_LIMIT:
                force_quit = True
                break
        turns.append(steps)
        if force_quit:
            log.info("%s: more than %d steps in turn %d; entry ends here", entry.id, STEP_LIMIT, turn)
            break
    if entry.is_memory_prereq:
        # What this conversation left in memory is where the scenario's next one starts.
        backends.only_instance()._flush_memory_to_local_file()
    return {"id": entry.id, "result": turns, "latency": round(time.perf_counter() - started, 3)}


def _original_name(name: str, functions: list[dict]) -> str:
    for function in functions:
        if function["name"].replace(".", "_") == name:
            return function["name"]
    return name


async def _run_item(model: Any, entry: data.Entry, settings: RunSettings) -> dict[str, Any]:
    try:
        if entry.category in data.MULTI_TURN or memory.is_memory(entry):
            return await run_multi_turn(model, entry, settings)
        return await run_single_turn(model, entry, settings)
    except ModelUnavailableError:
        raise  # an outage is not the item's failure: the run stops and --resume runs the item again
    except Exception as exc:  # as BFCL's runner does: the error is the item's result, scored as failed
        log.warning("%s: generation failed: %s", entry.id, exc)
        return error_row(entry.id, exc)


def error_row(item_id: str, exc: BaseException) -> dict[str, Any]:
    """An item whose generation raised, in BFCL's own form (its runner writes the same text)."""
    return {"id": item_id, "result": f"Error during inference: {error_message(exc)}", "error": True}


async def run_memory_scenario(
    model: Any, questions: list[data.Entry], settings: RunSettings, model_result_dir: Path
) -> list[dict[str, Any]]:
    """One memory category's scenario: its pre-requisite conversations in order, then its questions.

    A failed pre-requisite conversation is kept as an error row and the next one starts from the
    snapshot the last successful one left (or an empty memory), as in BFCL's runner. The first
    conversation always starts from an empty memory, so a scenario run again from the start (after
    a killed run) gives what one uninterrupted run gives.
    """
    first = questions[0]
    prereqs = data.load_memory_prereqs(first.category, first.scenario)
    rows = []
    for done, entry in enumerate(prereqs, start=1):
        rows.append(await _run_item(model, memory.with_snapshot_config(entry, model_result_dir), settings))
        log.info(
            "%s %s: conversation %d/%d filled the memory", first.category, first.scenario, done, len(prereqs)
        )
    answered = await asyncio.gather(
        *(_run_item(model, memory.with_snapshot_config(q, model_result_dir), settings) for q in questions)
    )
    return rows + list(answered)


@dataclass(frozen=True)
class ItemJob:
    """A batch job's payload: one item, or one memory scenario (its conversations, then ``entries``)."""

    entries: tuple[data.Entry, ...]
    scenario: bool = False

    def row_ids(self) -> list[str]:
        """Every result row the job writes (resume: a job is done when all of them are there)."""
        if not self.scenario:
            return [e.id for e in self.entries]
        first = self.entries[0]
        prereqs = data.load_memory_prereqs(first.category, first.scenario)
        return [e.id for e in prereqs] + [e.id for e in self.entries]


def plan_jobs(categories: list[str], limit: int | None) -> list[Job[ItemJob]]:
    """One job per item; a memory category's questions grouped by scenario, one job each (a scenario's
    conversations must run in order, and a scenario cut short runs again from its first one)."""
    jobs: list[Job[ItemJob]] = []
    for category in categories:
        if category in data.SKIPPED:
            log.warning("skipping %s: %s", category, data.SKIPPED[category])
            continue
        entries = data.load_entries(category)[: limit or None]
        if category in data.MEMORY_RUN:
            by_scenario: dict[str, list[data.Entry]] = {}
            for entry in entries:
                by_scenario.setdefault(entry.scenario, []).append(entry)
            jobs += [
                Job(f"{category}/{scenario}", ItemJob(tuple(group), scenario=True))
                for scenario, group in by_scenario.items()
            ]
        else:
            jobs += [Job(entry.id, ItemJob((entry,))) for entry in entries]
    return jobs


class ResultFiles:
    """The model's result files, one per category: each finished row is appended (fsync'd) the moment
    its item ends; :meth:`compact` sorts each file by id as BFCL's runner does at the end, and keeps
    the last row of an id a killed run left twice."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._appenders: dict[str, JsonlAppender] = {}

    def written_ids(self) -> set[str]:
        found: set[str] = set()
        for _, path in BfclRun.find_result_files(self.folder):
            found |= {str(row.get("id")) for row in read_rows(path)}
        return found

    def append(self, row: dict[str, Any]) -> None:
        category = data.category_of_id(row["id"])
        appender = self._appenders.get(category)
        if appender is None:
            appender = self._appenders[category] = JsonlAppender(BfclRun.result_file(self.folder, category))
        appender.write(row)

    def close(self) -> None:
        for appender in self._appenders.values():
            appender.close()
        self._appenders.clear()

    def compact(self) -> dict[str, int]:
        """Sorts every result file by id (one row per id, the last written); rows per category."""
        counts: dict[str, int] = {}
        for category, path in BfclRun.find_result_files(self.folder):
            rows = {str(row.get("id")): row for row in read_rows(path) if "id" in row}
            ordered = sorted(rows.values(), key=lambda row: _sort_key(row["id"]))
            tmp = path.with_suffix(path.suffix + ".tmp")
            results.write_results(tmp, ordered)
            tmp.replace(path)
            counts[category] = len(ordered)
        return counts


def _sort_key(item_id: str) -> tuple[int, str]:
    try:
        return results.id_index(item_id), item_id
    except ValueError:
        return 1 << 62, item_id


async def run_item_job(
    model: Any, settings: RunSettings, model_result_dir: Path, job: ItemJob
) -> list[dict[str, Any]]:
    """One job's rows: an item's, or a memory scenario's (its conversations, then its questions)."""
    if job.scenario:
        return await run_memory_scenario(model, list(job.entries), settings, model_result_dir)
    return [await _run_item(model, job.entries[0], settings)]


@dataclass(frozen=True)
class ItemWork:
    """BFCL items as plain data, for an executor whose workers reach the model under test by its alias.
    Memory scenarios keep their snapshots in ``model_result_dir``: on several machines that folder
    must be on a filesystem they share."""

    alias: str
    settings: RunSettings
    model_result_dir: Path

    def bind(self, models: Any) -> Callable[[ItemJob], Any]:
        return functools.partial(run_item_job, models.get(self.alias), self.settings, self.model_result_dir)


async def generate(
    model: Any,
    categories: list[str],
    settings: RunSettings,
    limit: int | None = None,
    model_result_dir: Path | None = None,
    *,
    concurrency: int = 256,
    on_progress: Callable[[BatchCounts], None] | None = None,
    executor: Executor = LOCAL,
    alias: str = "agent",
) -> dict[str, int]:
    """Generates every item of ``categories`` into ``model_result_dir`` (BFCL's result files, which
    grow as items finish); items already there are skipped, so a killed run continues where it
    stopped. Memory categories also write their pre-requisite conversations' rows
    (``memory_kv_prereq``, ...) and keep their snapshots in the folder. ``limit`` counts questions;
    the scenarios they belong to run in full. Returns the rows per category. Under a remote
    ``executor`` the workers reach the model by ``alias`` (``model`` may then be None)."""
    if model_result_dir is None:
        raise ValueError("expected generate(..., model_result_dir=<the folder the result files go to>)")
    files = ResultFiles(model_result_dir)
    jobs = plan_jobs(categories, limit)
    written = files.written_ids()
    done = {job.key for job in jobs if written.issuperset(job.payload.row_ids())}
    if written:
        log.info("resume: %d of %d jobs already written under %s", len(done), len(jobs), model_result_dir)
        files.compact()

    work = ItemWork(alias, settings, model_result_dir)
    runner = executor.runner(
        work, local=lambda: functools.partial(run_item_job, model, settings, model_result_dir)
    )

    def record(job: Job[ItemJob], rows: list[dict[str, Any]]) -> None:
        for row in rows:
            files.append(row)

    def record_error(job: Job[ItemJob], exc: BaseException) -> None:
        record(job, [error_row(item_id, exc) for item_id in job.payload.row_ids()])

    try:
        async with Batch(
            runner.run,
            concurrency=executor.in_flight(concurrency),
            record=record,
            record_error=record_error,
            done=done,
            stop_on=(ModelUnavailableError,),
            on_progress=on_progress,
            name="bfcl",
        ) as batch:
            batch.submit_all(jobs)
    finally:
        files.close()
    return files.compact()


def model_result_dir(out_dir: Path, model_label: str) -> Path:
    """Where a run's result files go: one folder per model, as in BFCL's layout."""
    return BfclRun(out_dir).result_folder(model_label)
