"""Executable environments: the interface (base, tools, store, policy), native domains, adapters."""
