"""The models of a run, reached by the aliases its recipe declares: one ChatModel (one engine for the
vllm backend) per alias, and one for several aliases whose specs are the same.

Phase 1's generator, the committee, the simulated human and the agent often name the same model:
sharing one instance means one vLLM engine (one set of weights, one KV cache, one batch), which is
what makes a CPU or single-GPU run fast. Models are built when first asked for, so a recipe whose
Phase 2 never starts never starts Phase 2's engines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from datagen.llm import ModelSpec, build_chat_model
from datagen.llm.types import ChatModel

log = logging.getLogger(__name__)


def engine_key(spec: ModelSpec) -> str:
    """Specs that differ only in their label share one model."""
    return spec.model_dump_json(exclude={"name"})


class ModelPool:
    def __init__(
        self, specs: Mapping[str, ModelSpec] | None = None, *, prebuilt: Mapping[str, ChatModel] | None = None
    ) -> None:
        self._specs: dict[str, ModelSpec] = dict(specs or {})
        self._prebuilt: dict[str, ChatModel] = dict(prebuilt or {})
        self._models: dict[str, ChatModel] = {}  # engine key -> model
        self._warned: set[tuple[str, str]] = set()

    def declare(self, alias: str, spec: ModelSpec) -> None:
        """Adds an alias (CLIs that build models from flags); an alias keeps its first spec."""
        known = self._specs.get(alias)
        if known is not None and engine_key(known) != engine_key(spec):
            from apigen_rules.redact import redact_text

            differ = sorted(
                k for k, v in spec.model_dump(exclude={"name"}).items() if known.model_dump()[k] != v
            )
            raise ValueError(
                redact_text(
                    f"model alias {alias!r} is declared twice with different settings ({', '.join(differ)}): "
                    f"{known.model_dump(include=set(differ))} vs {spec.model_dump(include=set(differ))}"
                )
            )
        self._specs[alias] = spec

    def spec(self, alias: str) -> ModelSpec:
        if alias not in self._specs:
            raise KeyError(f"no model alias {alias!r} in this run; declared: {sorted(self._specs)}")
        return self._specs[alias]

    def get(self, alias: str) -> ChatModel:
        """The model behind ``alias``, built the first time any alias with the same spec asks."""
        if alias in self._prebuilt:
            return self._prebuilt[alias]
        spec = self.spec(alias)
        key = engine_key(spec)
        model = self._models.get(key)
        if model is None:
            self._warn_same_weights(alias, spec)
            model = self._models[key] = build_chat_model(spec)
            log.info(
                "model %s (%s backend) serves %s", spec.label, spec.backend, ", ".join(self.sharing()[key])
            )
        return model

    def built(self, alias: str) -> ChatModel | None:
        """The model behind ``alias`` if it has been built; builds nothing (None otherwise)."""
        if alias in self._prebuilt:
            return self._prebuilt[alias]
        spec = self._specs.get(alias)
        return self._models.get(engine_key(spec)) if spec is not None else None

    def sharing(self) -> dict[str, list[str]]:
        """Engine key -> the aliases that share it (every declared alias, built or not)."""
        groups: dict[str, list[str]] = {}
        for alias, spec in self._specs.items():
            groups.setdefault(engine_key(spec), []).append(alias)
        return groups

    def sharing_lines(self) -> list[str]:
        """For people: which aliases share one model, e.g. ``embedded (vllm): generator, agent, user``."""
        lines = []
        for aliases in self.sharing().values():
            spec = self._specs[aliases[0]]
            lines.append(f"{spec.label} ({spec.backend}): {', '.join(aliases)}")
        return lines

    def _warn_same_weights(self, alias: str, spec: ModelSpec) -> None:
        """Two in-process engines of the same weights double memory for nothing: say which keys differ."""
        if spec.backend == "openai":
            return
        for other_alias, other in self._specs.items():
            if other_alias == alias or other.model != spec.model or other.backend != spec.backend:
                continue
            if engine_key(other) == engine_key(spec) or (other_alias, alias) in self._warned:
                continue
            self._warned.add((alias, other_alias))
            differ = sorted(
                k for k, v in spec.model_dump(exclude={"name"}).items() if other.model_dump().get(k) != v
            )
            log.warning(
                "aliases %r and %r load the same weights (%s) with different settings (%s): each gets its own "
                "engine; make them one alias to share one",
                alias,
                other_alias,
                spec.model,
                ", ".join(differ),
            )

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()
        self._models.clear()

    async def __aenter__(self) -> ModelPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
