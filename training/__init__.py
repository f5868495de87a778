"""apigen-mt training: the TRL SFT entry point, tool-aware chat templates and data mixing."""
