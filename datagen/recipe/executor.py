"""The recipe's ``executor:`` section: where a batch's jobs run (``datagen.runner.executor`` builds
the executor from it).

``executor: {type: local}`` (the default) runs every job in this process's event loop;
``executor: {type: ray, workers: N}`` runs them on N Ray actors. These are plain typed settings,
read with the rest of the recipe; nothing here imports Ray.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class LocalExecutorConfig(_Strict):
    """Every job in this process's event loop (the default)."""

    type: Literal["local"] = Field("local", description="selects this executor")


class RayExecutorConfig(_Strict):
    """Jobs spread over Ray actors; results stream back to this process, which alone writes."""

    type: Literal["ray"] = Field("ray", description="selects this executor")
    workers: int = Field(2, ge=1, description="Ray actors, each with its own environments and model clients")
    address: str | None = Field(
        None,
        description="unset: $RAY_ADDRESS if set, else a new Ray instance on this machine (loopback); "
        "'auto': the cluster `ray start` runs on this node; 'ray://HOST:10001': Ray Client",
    )
    num_gpus_per_worker: float = Field(
        0,
        ge=0,
        description="GPUs each actor holds; with `backend: vllm` models each actor runs its own engine on them",
    )
    num_cpus_per_worker: float = Field(1, ge=0, description="CPUs Ray reserves per actor (scheduling only)")
    vllm: Literal["auto", "per_worker", "one_server"] = Field(
        "auto",
        description="how `backend: vllm` models are reached: per_worker = an in-process engine in every "
        "actor (on its GPUs); one_server = one OpenAI-compatible vLLM server per model that every actor "
        "calls; auto = per_worker when num_gpus_per_worker > 0, else one_server",
    )
    max_restarts: int = Field(
        3, ge=0, description="lost actors replaced, in all, before the run goes on with fewer"
    )

    def engines_per_worker(self) -> bool:
        """Whether each actor runs its own in-process engine for ``backend: vllm`` models."""
        if self.vllm == "auto":
            return self.num_gpus_per_worker > 0
        return self.vllm == "per_worker"


ExecutorConfig = Annotated[LocalExecutorConfig | RayExecutorConfig, Field(discriminator="type")]
