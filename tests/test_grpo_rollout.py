"""GRPO rollouts: the reward comes from the environment and the verifier, and the token transcript the
trainer gets is exactly what the policy saw and wrote.

The policy here is scripted at the token level (a generate function in place of the trainer's model,
fed through the real tokenizer, chat template, tool-call parser, episode layer, environment and
verifier): one that makes the blueprint's calls scores 1, one that does nothing scores 0 where the
gold changes the state. The simulated user is scripted too (it says what it wants, then stops once
the agent has answered), because these tests are about the reward, not about a user model; the slow
GRPO test runs the real user model on a vLLM server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from libraryrun import library_blueprints, scripted_rollout

from datagen.llm.formats import get_format
from datagen.records import Blueprint
from datagen.simulate.verdict import gold_hash
from training.chat_templates import SHIPPED_TEMPLATES
from training.rl.logprobs import LogprobMask, trainer_logprobs
from training.rl.policy import Generated, GenerationRequest, Sampler, TemplateRenderer
from training.rl.rewards import reward_functions
from training.rl.rollout import EpisodeRollout, to_trl
from training.rl.tasks import prompt_row

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Blueprint]]:
    return library_blueprints(tmp_path_factory.mktemp("domains"))


@pytest.fixture(scope="module")
def tokenizer(embedded_model: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(embedded_model))
    tok.chat_template = SHIPPED_TEMPLATES["smollm2"].read()
    return tok


def scripted_policy(tokenizer, calls: list[dict[str, Any]], answer: str):
    """A generate function that writes one call a turn (hermes, as the template expects), then the answer."""
    turns = [get_format("hermes").render_calls([c]) for c in calls] + [answer]
    written: list[str] = []

    def generate_batch(requests: list[GenerationRequest]) -> list[Generated]:
        out = []
        for _ in requests:
            text = turns[min(len(written), len(turns) - 1)]
            written.append(text)
            out.append(Generated(tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]))
        return out

    return generate_batch, written


def _play(rollout: EpisodeRollout, blueprint: Blueprint, domain, generate_batch):
    [outcome] = rollout.run([prompt_row(blueprint, domain.policy)["prompt"]], generate_batch)
    return outcome


def test_a_policy_making_the_gold_calls_scores_1_and_one_doing_nothing_scores_0(library, tokenizer):
    domain, blueprints = library
    functions, _ = reward_functions({"gold_calls": 0.5})
    for blueprint in blueprints:
        # The customer says what it wants (its instruction) first: every value the gold calls use
        # is then said before it is used, as the provenance check asks.
        rollout = scripted_rollout(blueprints, tokenizer, opening=blueprint.instruction)
        gold = [a.model_dump() for a in blueprint.actions]
        acting, _ = scripted_policy(tokenizer, gold, "All done. " + " ".join(blueprint.outputs))
        idle, _ = scripted_policy(tokenizer, [], "Sorry, I cannot help with that.")
        try:
            done, nothing = _play(rollout, blueprint, domain, acting), _play(rollout, blueprint, domain, idle)
        finally:
            rollout.close()
        scores = [f(episode=[done.episode, nothing.episode]) for f in functions]
        changes_state = (
            gold_hash(domain, blueprint.seed, blueprint.actions)[0]
            != gold_hash(domain, blueprint.seed, [])[0]
        )
        assert done.episode["termination"] == "user_stop" and done.episode["success"]
        assert scores[0][0] == 1.0 and scores[1][0] == 1.0  # verifier; every gold call made
        assert scores[0][1] == 0.0 and scores[1][1] == 0.0
        assert nothing.episode["failure"] == ("state_mismatch" if changes_state else "missing_output")
        assert done.episode["gold_calls_matched"] == len(gold) and done.episode["tool_calls"] == len(gold)
    assert any(
        gold_hash(domain, b.seed, b.actions)[0] != gold_hash(domain, b.seed, [])[0] for b in blueprints
    ), "one gold task must change the state, or the do-nothing check proves nothing"


def test_the_right_calls_with_values_nobody_said_score_0(library, tokenizer):
    """The reward is Phase 2's verdict, provenance check included: the gold calls made on an e-mail
    the customer never gave reach the right state and still score 0."""
    domain, blueprints = library
    blueprint = next(b for b in blueprints if any("email" in a.arguments for a in b.actions))
    rollout = scripted_rollout(blueprints, tokenizer)  # the customer only says it needs help
    acting, _ = scripted_policy(tokenizer, [a.model_dump() for a in blueprint.actions], "All done.")
    try:
        outcome = _play(rollout, blueprint, domain, acting)
    finally:
        rollout.close()
    assert outcome.episode["state_match"] and outcome.episode["ungrounded_arguments"] >= 1
    assert outcome.episode["failure"] == "ungrounded_arguments" and not outcome.episode["success"]


def test_the_transcript_is_what_the_policy_saw_and_wrote(library, tokenizer):
    domain, blueprints = library
    blueprint = blueprints[0]
    rollout = scripted_rollout(blueprints, tokenizer, opening=blueprint.instruction)
    gold = [a.model_dump() for a in blueprint.actions]
    acting, written = scripted_policy(tokenizer, gold, "Your ticket is closed.")
    try:
        outcome = _play(rollout, blueprint, domain, acting)
    finally:
        rollout.close()
    transcript = outcome.transcript
    ids, mask = transcript.completion_ids, transcript.policy_mask
    assert len(ids) == len(mask) and transcript.turns == len(written) == len(gold) + 1
    # The policy's tokens are exactly the turns it wrote, each closed by its end-of-turn token.
    spans, current = [], []
    for token, mine in zip(ids, mask, strict=True):
        if mine:
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    spans += [current] if current else []
    assert [tokenizer.decode(s) for s in spans] == [w + tokenizer.eos_token for w in written]
    # Everything else is context: the customer's message, the tool results, the assistant headers.
    context = tokenizer.decode([t for t, mine in zip(ids, mask, strict=True) if not mine])
    assert blueprint.instruction in context and '"user_id"' not in written[0]
    assert context.count("<|im_start|>assistant") == len(written)
    # The prompt is the opening every rollout of this task shares: system prompt with tools, greeting.
    opening = tokenizer.decode(transcript.prompt_ids)
    assert opening.startswith("<|im_start|>system") and opening.endswith(
        "Hi! How can I help you today?<|im_end|>"
    )
    # With calls written as the template writes them, prompt + completion is the template's own
    # rendering of the dialogue up to the policy's last turn: nothing was lost or re-tokenised.
    last_turn = max(i for i, m in enumerate(outcome.messages) if m["role"] == "assistant")
    rendered = rollout.renderer.through_last_turn(outcome.messages[: last_turn + 1], domain.tool_schemas())
    assert transcript.prompt_ids + ids == tokenizer.encode(rendered, add_special_tokens=False)
    trl = to_trl([outcome], tokenizer.eos_token_id)
    assert trl["completion_ids"][0] == ids and trl["env_mask"][0] == mask and trl["logprobs"] is None
    assert trl["episode"][0]["success"]


def test_the_completion_budget_ends_the_episode_without_passing_it(library, tokenizer):
    domain, blueprints = library
    rollout = scripted_rollout(blueprints, tokenizer, user_stops=False, max_completion_length=120)
    chatter, _ = scripted_policy(tokenizer, [], "word " * 60)
    try:
        outcome = _play(rollout, blueprints[0], domain, chatter)
    finally:
        rollout.close()
    assert len(outcome.transcript.completion_ids) <= 120
    assert outcome.episode["termination"] == "error" and "max_completion_length" in outcome.episode["error"]
    assert not outcome.episode["success"]


# Qwen3's template drops the empty <think></think> of every assistant turn but the last, so a turn
# renders differently once the dialogue goes on: no GRPO recipe for it (TRL refuses such templates too).
NOT_PREFIX_PRESERVING = {"qwen3"}


@pytest.mark.parametrize("name", sorted(SHIPPED_TEMPLATES))
def test_shipped_templates_keep_a_dialogue_as_one_token_sequence(name: str, tokenizer, library):
    """Multi-turn rollouts need templates that render earlier messages the same whatever follows."""
    domain, _ = library
    spec = SHIPPED_TEMPLATES[name]
    tokenizer.chat_template = spec.read()
    call = {"name": "find_user_id_by_email", "arguments": {"email": "a@b.c"}}
    messages = [
        {"role": "system", "content": "policy"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Close my ticket."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "type": "function", "function": call}],
        },
        {"role": "tool", "tool_call_id": "c1", "name": call["name"], "content": json.dumps("u1")},
    ]
    try:
        renderer = TemplateRenderer(tokenizer, get_format(spec.tool_format), spec.tool_format)
        for covered in (2, 4):
            if name in NOT_PREFIX_PRESERVING:
                with pytest.raises(ValueError, match="not prefix-preserving"):
                    renderer.continuation(messages, covered, domain.tool_schemas())
                continue
            rest = renderer.continuation(messages, covered, domain.tool_schemas())
            assert messages[covered]["content"].strip('"') in rest
            assert not rest.startswith(renderer.end_of_turn)  # the turn's own end stays with the turn
    finally:
        tokenizer.chat_template = SHIPPED_TEMPLATES["smollm2"].read()


def test_grpo_recipes_use_templates_that_keep_the_dialogue():
    from training.grpo import parse_args

    for recipe in sorted((ROOT / "recipes" / "grpo").rglob("*.yaml")):
        gpu = "cpu" not in recipe.stem
        script_args, _, _ = parse_args(["--config", str(recipe)] + (["--use_cpu", "true"] if gpu else []))
        assert script_args.template not in NOT_PREFIX_PRESERVING, recipe


def test_a_template_that_rewrites_the_past_is_refused(tokenizer):
    renderer = TemplateRenderer(tokenizer, get_format("hermes"), "hermes")
    original = tokenizer.chat_template
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }} ({{ messages | length }})<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    messages = [
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "u"},
    ]
    try:
        with pytest.raises(ValueError, match="not prefix-preserving"):
            renderer.continuation(messages, 2, None)
    finally:
        tokenizer.chat_template = original


def test_shaping_terms_read_the_episode_and_stay_in_0_1():
    from datagen.envs.policy import ActionRecord
    from training.rl.rewards import SHAPING_TERMS, gold_calls_matched, shaping_function, verifier

    gold = [{"name": "withdraw", "arguments": {"account_id": "a1", "amount": 40}}] * 2
    trace = [
        ActionRecord("withdraw", {"account_id": "A1", "amount": "40.00"}, "write", True, "{}"),  # value rule
        ActionRecord("withdraw", {"account_id": "a1", "amount": 40}, "write", False, "error"),  # did not run
    ]
    assert gold_calls_matched(gold, trace) == 1  # each executed call counts for one gold action at most
    episode = {
        "success": False, "outputs_found": 1, "outputs_expected": 2, "gold_calls": 2, "gold_calls_matched": 1,
        "tool_calls": 4, "failed_tool_calls": 1, "format_errors": 1, "agent_turns": 4, "agent_tokens": 100,
        "turn_max_tokens": 100,
    }  # fmt: skip
    values = {name: shaping_function(name)(episode=[episode])[0] for name in SHAPING_TERMS}
    assert values == {
        "outputs": 0.5,
        "gold_calls": 0.5,
        "tool_success": 0.75,
        "format": 0.75,
        "brevity": 0.75,
    }
    silent = {**episode, "agent_turns": 0, "agent_tokens": 0, "tool_calls": 0, "failed_tool_calls": 0}
    assert {n: shaping_function(n)(episode=[silent])[0] for n in ("tool_success", "format", "brevity")} == {
        "tool_success": 0.0,
        "format": 0.0,
        "brevity": 0.0,
    }  # a policy that never speaks earns no partial credit
    assert verifier(episode=[episode, {**episode, "success": True}]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="unknown shaping term"):
        shaping_function("speed")


def test_tasks_keep_the_export_split(tmp_path: Path):
    """GRPO on `train` takes exactly the blueprints whose dialogues the export put in `train`, whether
    it is given the run directory (with the export's split settings) or the export folder."""
    from exportrun import write_run

    from datagen.export import export_run
    from datagen.rundir import DatagenRun
    from training.rl.tasks import TaskSource, load_tasks

    run = write_run(tmp_path / "run", count=12)
    blueprints = [
        Blueprint(id=f"bp{i}", env="bank", seed=1, persona="p", instruction=f"task {i}", actions=[])
        for i in range(12)
    ]  # distinct instructions: blueprints that read the same share a split group
    DatagenRun(run).blueprints.write_text("".join(b.model_dump_json() + "\n" for b in blueprints))
    export_run(run, tmp_path / "export", fmt="jsonl", seed=3, test=0.25)
    exported = {
        split: {
            json.loads(line)["blueprint_id"]
            for line in (tmp_path / "export" / f"{split}.jsonl").read_text().splitlines()
        }
        for split in ("train", "test")
    }
    assert exported["train"] and exported["test"]
    for split in ("train", "test"):
        from_export, facts = load_tasks(TaskSource(export_dir=str(tmp_path / "export"), split=split))
        from_run, _ = load_tasks(TaskSource(run_dir=str(run), split=split, seed=3, test=0.25))
        assert {b.id for b in from_export} == {b.id for b in from_run} == exported[split]
        assert facts["split_rule"] == {"seed": 3, "validation": 0.0, "test": 0.25}
    with pytest.raises(ValueError, match="brings its own split"):
        TaskSource(export_dir=str(tmp_path / "export"), test=0.5)
    with pytest.raises(ValueError, match="none on the 'validation' side"):
        load_tasks(TaskSource(run_dir=str(run), split="validation"))


class ScoredGeneration:
    """A generation that reports log-probabilities, as the vLLM engine does: the scripted turns scored
    by the model itself, the turn ``shifted_turn`` reported 2 nats lower than the model gives it."""

    def __init__(self, generate_batch, model, shifted_turn: int) -> None:
        self.turns = 0

        def scored(requests: list[GenerationRequest]) -> list[Generated]:
            out = generate_batch(requests)
            for request, generated in zip(requests, out, strict=True):
                exact = trainer_logprobs(
                    model, request.prompt_ids, generated.token_ids, temperature=1.0, device="cpu"
                )
                shift = 2.0 if self.turns == shifted_turn else 0.0
                generated.logprobs = [lp - shift for lp in exact]
                self.turns += 1
            return out

        self.generate_batch = scored

    @contextmanager
    def sampler(self, trainer) -> Iterator[Sampler]:
        yield Sampler(self.generate_batch, reports_logprobs=True)

    def metrics(self) -> dict[str, float]:
        return {"rollout/engine_weights_step": 0.0}

    def close(self) -> None:
        pass


def test_a_generator_reporting_log_probabilities_is_checked_and_masked(library, tokenizer, embedded_model):
    """The rollout compares the generator's log-probabilities with the trainer's on the policy's
    tokens, logs the gap through TRL's metric path, and with logprob_mask drops the tokens that are
    too far off from the loss (env_mask); TRL gets the generator's log-probabilities."""
    import torch
    from transformers import AutoModelForCausalLM

    domain, blueprints = library
    blueprint = blueprints[0]
    model = AutoModelForCausalLM.from_pretrained(str(embedded_model), dtype=torch.float32)
    acting, written = scripted_policy(tokenizer, [a.model_dump() for a in blueprint.actions], "Done.")
    generation = ScoredGeneration(acting, model, shifted_turn=1)
    rollout = scripted_rollout(
        blueprints,
        tokenizer,
        opening=blueprint.instruction,
        generation=generation,
        logprob_mask=LogprobMask(level="token", max_log_ratio=1.0),
    )
    logged: dict[str, float] = {}
    trainer = SimpleNamespace(
        accelerator=SimpleNamespace(process_index=0, num_processes=1, device="cpu"),
        eos_token_ids=[tokenizer.eos_token_id],
        model=model,
        args=SimpleNamespace(gradient_checkpointing_kwargs=None),
        temperature=1.0,
        _log_metric=logged.__setitem__,
    )
    try:
        output = rollout([prompt_row(blueprint, domain.policy)["prompt"]], trainer)
    finally:
        rollout.close()
    [mask], [logprobs], [ids] = output["env_mask"], output["logprobs"], output["completion_ids"]
    turn_lengths = [len(tokenizer.encode(w, add_special_tokens=False)) + 1 for w in written]
    assert len(logprobs) == len(ids) == len(mask) and sum(mask) == sum(turn_lengths) - turn_lengths[1]
    assert logged["rollout/logprob_gap_max"] == pytest.approx(2.0, abs=1e-3)
    assert logged["rollout/logprob_gap"] == pytest.approx(2.0 * turn_lengths[1] / sum(turn_lengths), abs=1e-3)
    assert logged["rollout/masked_token_share"] == pytest.approx(turn_lengths[1] / sum(turn_lengths))
    assert logged["rollout/engine_weights_step"] == 0.0
    # What the loss still sees is exactly the turns reported faithfully.
    kept = tokenizer.decode([token for token, m in zip(ids, mask, strict=True) if m])
    assert kept == "".join(w + tokenizer.eos_token for i, w in enumerate(written) if i != 1)
