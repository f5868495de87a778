"""The files an export writes beside its data, by name: ``datagen.export`` writes them, the trainers'
mixture, GRPO's task source, the Hub upload and the viewer read them back by these names."""

from __future__ import annotations

CARD_FILE = "README.md"  # the dataset card: YAML metadata (licence, configs) and the text
FACTS_FILE = "export.json"  # what the card states, machine-readable (splits, seed, funnels, ids)
LICENSE_FILE = "LICENSE.md"  # written only for `license: other` without a name or a link

#: the formats written in the Hub's own layout: Parquet shards under ``data/``, by ``datasets``' writer
HUB_LAYOUT = ("hf", "preference")
#: each split's data files by export format, relative to the export folder
DATA_FILES = {
    "hf": "data/{split}-*.parquet",
    "preference": "data/{split}-*.parquet",
    "sharegpt": "{split}.json",
    "jsonl": "{split}.jsonl",
}
