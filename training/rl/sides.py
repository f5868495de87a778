"""The two sides of an episode, built the way Phase 2 and the τ harness build theirs: the runner core's
build layer (:mod:`datagen.simulate.build`) and its episode config, re-exported for the GRPO code."""

from __future__ import annotations

from datagen.recipe.episode import AgentRole, EpisodeConfig, UserRole
from datagen.simulate.build import EpisodeSides, Models, build_sides, episode_seed, play_episode

__all__ = [
    "AgentRole",
    "EpisodeConfig",
    "EpisodeSides",
    "Models",
    "UserRole",
    "build_sides",
    "episode_seed",
    "play_episode",
]
