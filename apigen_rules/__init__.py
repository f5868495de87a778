"""The rules every apigen-mt package shares, in one leaf that imports no other project package.

``datagen``, ``evaluation``, ``training`` and ``viewer`` all import from here, so a rule is written
once and never copied: SFT and DPO load these modules without loading ``datagen`` at all.

- :mod:`.errors`: the one base class of the errors a command prints as one line;
- :mod:`.redact`: credentials out of anything logged, saved or rendered;
- :mod:`.yamlsafe`: the bounded reader of YAML a person wrote;
- :mod:`.values`: how expected outputs and argument values are compared;
- :mod:`.jsonl`: crash-safe JSONL files (append, fsync, damaged lines reported and skipped);
- :mod:`.messages`: the chat messages of a record or a dataset row, and their dataset columns;
- :mod:`.export_files`: the names of the files an export writes beside its data;
- :mod:`.fields`: fields of records nobody vouches for, read as a value of the expected type or an empty one.

Nothing here imports a heavy package at module level (``datasets`` is imported inside the one
function that builds its features).
"""
