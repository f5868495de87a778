"""GRPO on our environments: tasks, the policy as an episode agent, rollouts, rewards (may import datagen)."""
