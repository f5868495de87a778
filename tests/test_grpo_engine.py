"""The policy's colocated vLLM engine (training.rl.engine) on the embedded model: token ids in and out,
seeded per request, and the trainer's weights reaching it after an optimizer step, LoRA and full
fine-tuning: its log-probabilities of a fixed continuation equal the trainer's within float32 noise
after the sync, and differ before it. Plus the log-probability check of training.rl.logprobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.rl.logprobs import LogprobMask, apply_mask, compare, policy_gaps, trainer_logprobs
from training.rl.policy import GenerationRequest
from training.rl.tasks import prompt_row

PROMPT = "<|im_start|>user\nWhich city is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
CONTINUATION = "The capital of France is Paris, a city on the Seine."
# float32 on both sides; the engine's kernels and batching differ from the trainer's, no more.
SAME = 2e-3


# -- the check, without an engine --------------------------------------------------------------------
def test_gaps_are_taken_on_the_policy_tokens_only():
    assert policy_gaps([-1.0, 0.0, -2.0], [-1.5, -9.0, -2.25], [1, 0, 1]) == [0.5, 0.25]
    with pytest.raises(ValueError, match="one log-probability per completion token"):
        policy_gaps([-1.0], [-1.0, -2.0], [1, 1])


def test_the_mask_drops_far_tokens_or_whole_episodes():
    mask, gaps = [0, 1, 1, 0, 1], [0.1, 2.0, 0.2]
    assert apply_mask(mask, gaps, None) == mask
    assert apply_mask(mask, gaps, LogprobMask(level="token", max_log_ratio=1.0)) == [0, 1, 0, 0, 1]
    assert apply_mask(mask, gaps, LogprobMask(level="sequence", max_log_ratio=0.5)) == [0] * 5  # mean 0.77
    assert apply_mask(mask, gaps, LogprobMask(level="sequence", max_log_ratio=1.0)) == mask
    report = compare([[-1.0, 0.0, -3.0]], [[-1.0, -5.0, -1.0]], [[1, 0, 1]], LogprobMask(max_log_ratio=1.0))
    assert report.masks == [[1, 0, 0]] and report.masked_tokens == 1 and report.masked_episodes == 0
    assert report.metrics() == {
        "rollout/logprob_gap": 1.0,
        "rollout/logprob_gap_max": 2.0,
        "rollout/masked_token_share": 0.5,
    }


@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 5)), max_size=40),
    st.sampled_from(["token", "sequence"]),
    st.floats(0.01, 5),
)
def test_the_mask_only_ever_removes_policy_tokens(tokens, level, bound):
    mask = [m for m, _ in tokens]
    gaps = [g for m, g in tokens if m]
    kept = apply_mask(mask, gaps, LogprobMask(level=level, max_log_ratio=bound))
    assert len(kept) == len(mask) and all(k <= m for k, m in zip(kept, mask, strict=True))
    kept_gaps = [g for (m, g), k in zip(tokens, kept, strict=True) if m and k]
    if level == "token":
        assert all(g <= bound for g in kept_gaps)


def test_engine_settings_follow_the_machine_and_the_recipe(embedded_model: Path):
    from training.rl.engine import EngineSettings, engine_kwargs, vllm_lora_rank

    kwargs = engine_kwargs(EngineSettings(str(embedded_model), 4096, 4, lora_rank=12, dtype="float32"))
    assert kwargs["distributed_executor_backend"] == "external_launcher"
    assert kwargs["logprobs_mode"] == "processed_logprobs"
    assert kwargs["enable_lora"] and kwargs["max_lora_rank"] == 16 and kwargs["max_loras"] == 1
    # This CPU: the runtime sizes the KV cache and prompts are prefilled whole (seeded requests).
    assert "gpu_memory_utilization" not in kwargs and kwargs["kv_cache_memory_bytes"] > 0
    assert kwargs["enable_chunked_prefill"] is False
    assert kwargs["dtype"] == "float32"  # the trainer's, whatever this CPU computes fastest in
    assert "enable_lora" not in engine_kwargs(EngineSettings(str(embedded_model), 4096, 4))
    assert [vllm_lora_rank(r) for r in (1, 2, 64, 65)] == [1, 8, 64, 128]
    with pytest.raises(ValueError, match="up to rank 512"):
        vllm_lora_rank(1024)


# -- the engine ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(embedded_model: Path):
    from transformers import AutoTokenizer

    from training.chat_templates import SHIPPED_TEMPLATES

    tok = AutoTokenizer.from_pretrained(str(embedded_model))
    tok.chat_template = SHIPPED_TEMPLATES["smollm2"].read()
    return tok


def _engine(embedded_model: Path, tokenizer, lora_rank: int | None) -> Any:
    from training.rl.engine import EngineSettings, PolicyEngine, Sampling

    settings = EngineSettings(str(embedded_model), 2048, 4, lora_rank=lora_rank, dtype="float32")
    return PolicyEngine(settings, Sampling(temperature=0.7, stop_ids=(tokenizer.eos_token_id,)))


def _one_step(model, tokenizer, lr: float) -> None:
    """One optimizer step that changes the weights: raise the likelihood of an unrelated sentence."""
    import torch

    ids = torch.tensor([tokenizer.encode("Quarterly invoices are filed under section nine.")])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def _gap(engine, model, tokenizer) -> float:
    prompt = tokenizer.encode(PROMPT, add_special_tokens=False)
    continuation = tokenizer.encode(CONTINUATION, add_special_tokens=False)
    served = engine.continuation_logprobs(prompt, continuation)
    trained = trainer_logprobs(model, prompt, continuation, temperature=1.0, device="cpu")
    return max(abs(a - b) for a, b in zip(served, trained, strict=True))


@pytest.fixture
def lora_engine(embedded_model: Path, tokenizer) -> Iterator[Any]:
    engine = _engine(embedded_model, tokenizer, lora_rank=8)
    try:
        yield engine
    finally:
        engine.close()


@pytest.mark.vllm
def test_lora_engine_generates_ids_and_follows_the_adapter(
    lora_engine, embedded_model: Path, tokenizer, tmp_path: Path
):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(embedded_model), dtype=torch.float32)
    model = get_peft_model(
        base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"])
    )
    lora_engine.sync(model, 0)
    assert lora_engine.weights_step == 0 and _gap(lora_engine, model, tokenizer) < SAME

    # Token ids in, token ids and their log-probabilities out; the request's seed decides the sample.
    prompt = tokenizer.encode(PROMPT, add_special_tokens=False)
    requests = [GenerationRequest(prompt, 24, seed) for seed in (7, 7, 8)]
    first, again, other = lora_engine.generate_batch(requests)
    assert first.token_ids == again.token_ids != other.token_ids
    assert len(first.logprobs) == len(first.token_ids) <= 24 and all(lp <= 0 for lp in first.logprobs)
    # The sampled log-probabilities are the trainer's at the sampling temperature.
    model.eval()
    recomputed = trainer_logprobs(model, prompt, first.token_ids, temperature=0.7, device="cpu")
    assert max(abs(a - b) for a, b in zip(first.logprobs, recomputed, strict=True)) < SAME

    _episodes_are_exact_and_seeded(lora_engine, model, tokenizer, tmp_path)

    _one_step(model, tokenizer, lr=0.5)
    stale = _gap(lora_engine, model, tokenizer)
    lora_engine.sync(model, 1)  # a new LoRA request with the trained adapter
    fresh = _gap(lora_engine, model, tokenizer)
    assert stale > 0.05 and fresh < SAME, (stale, fresh)
    assert lora_engine.weights_step == 1 and lora_engine.lora.lora_int_id == 2


def _episodes_are_exact_and_seeded(engine, model, tokenizer, tmp_path: Path) -> None:
    """Whole episodes through the rollout with the engine as the policy (the user scripted): an
    episode's seed is its task and attempt (the build layer's rule), so attempt 0 played again is the
    same transcript token for token and attempt 1 another; the log-probabilities the engine reports
    for the policy's tokens are the trainer's."""
    from libraryrun import library_blueprints, scripted_rollout

    domain, blueprints = library_blueprints(tmp_path / "domains")
    rollout = scripted_rollout(blueprints, tokenizer, opening=blueprints[0].instruction, turn_tokens=48)
    prompt = prompt_row(blueprints[0], domain.policy)["prompt"]
    try:
        first, second = rollout.run(
            [prompt, prompt], engine.generate_batch, context_limit=engine.max_model_len
        )
        [again] = rollout.run([prompt], engine.generate_batch, context_limit=engine.max_model_len)
    finally:
        rollout.close()
    assert again.transcript.completion_ids == first.transcript.completion_ids
    assert second.transcript.completion_ids != first.transcript.completion_ids
    for outcome in (first, second):
        transcript = outcome.transcript
        assert transcript.turns >= 1 and transcript.unscored == 0
        recomputed = trainer_logprobs(
            model, transcript.prompt_ids, transcript.completion_ids, temperature=0.7, device="cpu"
        )
        report = compare([transcript.sampled_logprobs], [recomputed], [transcript.policy_mask])
        assert report.policy_tokens == sum(transcript.turn_tokens)
        assert report.metrics()["rollout/logprob_gap_max"] < SAME


@pytest.mark.vllm
def test_full_fine_tuning_weights_are_loaded_into_the_engine(embedded_model: Path, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(embedded_model), dtype=torch.float32)
    engine = _engine(embedded_model, tokenizer, lora_rank=None)
    try:
        assert _gap(engine, model, tokenizer) < SAME
        _one_step(model, tokenizer, lr=0.05)
        stale = _gap(engine, model, tokenizer)
        engine.sync(model, 1)  # every parameter loaded in place
        fresh = _gap(engine, model, tokenizer)
        assert stale > 0.05 and fresh < SAME, (stale, fresh)
    finally:
        engine.close()


@pytest.mark.slow
def test_each_training_process_has_its_own_engine_with_its_own_weights(
    tmp_path: Path, embedded_model: Path, plain_env: dict[str, str]
):
    """Two processes with a process group up (as under accelerate or DeepSpeed), each with its own
    engine: each trains its adapter one step on its own sentence, syncs it, and generates its own
    request; each engine then gives its own process's log-probabilities, not the other's."""
    import json
    import subprocess

    root = Path(__file__).resolve().parent.parent
    command = ["torchrun", "--standalone", "--nproc_per_node", "2", "tests/engine_ranks.py", str(tmp_path)]
    done = subprocess.run(command, cwd=root, env=plain_env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]

    def gap(a: list[float], b: list[float]) -> float:
        return max(abs(x - y) for x, y in zip(a, b, strict=True))

    for rank in ranks:
        assert gap(rank["served"], rank["trained"]) < SAME and gap(rank["sampled"], rank["recomputed"]) < SAME
    assert gap(ranks[0]["served"], ranks[1]["trained"]) > 0.05  # the two processes' weights differ
    assert ranks[0]["generated"] != ranks[1]["generated"]
