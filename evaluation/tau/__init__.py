"""τ-bench-style evaluation: the agent under test, a fixed simulated user, state-verified reward, pass^k."""
