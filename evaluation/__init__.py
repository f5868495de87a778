"""apigen-mt evaluation: BFCL-style and tau-bench-style harnesses and the leaderboard report."""
