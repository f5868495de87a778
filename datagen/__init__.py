"""apigen-mt data generation: environments, the LLM runtime, Phase 1 blueprints, Phase 2 dialogues, export."""
