"""One ChatModel per distinct ModelSpec, shared by every part of a run.

Phase 1's generator, the committee, the simulated human and the agent often name the same model:
sharing one instance means one vLLM engine (one set of weights, one KV cache, one batch), which is
what makes a CPU or single-GPU run fast.
"""

from __future__ import annotations

from datagen.llm import ModelSpec, build_chat_model
from datagen.llm.types import ChatModel


class ModelPool:
    def __init__(self) -> None:
        self._models: dict[str, ChatModel] = {}

    def get(self, spec: ModelSpec) -> ChatModel:
        key = spec.model_dump_json()
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = build_chat_model(spec)
        return model

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()
        self._models.clear()

    async def __aenter__(self) -> ModelPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
