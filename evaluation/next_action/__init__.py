"""Teacher-forced, turn-level evaluation on held-out verified dialogues (``apigen-mt eval next-action``)."""
