"""Phase 2: the simulated human, the agent, the episode loop and its verdict, and the runner."""
