"""Every file of a run directory: its name, its reader and its writer.

Nothing else in the toolkit spells a run file's name (``tests/test_rundir.py`` greps for literals).
Every kind of run shares the same rules (:mod:`datagen.rundir.base`): JSONL files are append-only
and fsync'd (:class:`apigen_rules.jsonl.JsonlAppender`), summaries are rewritten atomically, and the run's
settings are saved beside the results under one name, in one format, atomically, with credentials
redacted, so a run can be read, resumed and reproduced from its own directory. A command opens a run
through one guard (:meth:`RunDir.open_for_writing`): a run that holds records is continued only with
``--resume``, and a resume whose settings change what the run makes is refused, naming the keys
(:func:`check_resume`).

- :class:`DatagenRun` (``runs/<name>/``, written by ``blueprints``, ``simulate`` and ``generate``)
- :class:`TauRun` (``eval tau --out DIR``; with ``--repeats N`` one TauRun per repeat inside DIR)
- :class:`TauScoreRun` (``eval tau-score FILE... --out DIR``)
- :class:`BfclRun` (``eval bfcl --out DIR``; the result files inside keep BFCL's own layout so the
  official checker can re-score them)
- :class:`NextActionRun` (``eval next-action --out DIR``)
"""

from __future__ import annotations

from apigen_rules.jsonl import JsonlAppender
from datagen.rundir.base import RunDir, load_settings
from datagen.rundir.bfcl import BFCL_PREFIX, GENERATION_KEYS, BfclRun
from datagen.rundir.datagen_run import DatagenRun, save_recipe
from datagen.rundir.guard import RESUMABLE_KEYS, check_output_folder, check_resume, recipe_changes
from datagen.rundir.next_action import NextActionRun
from datagen.rundir.reading import read_json, read_records, read_rows
from datagen.rundir.tau import TauRun, TauScoreRun

__all__ = [
    "BFCL_PREFIX",
    "GENERATION_KEYS",
    "BfclRun",
    "DatagenRun",
    "JsonlAppender",
    "NextActionRun",
    "RunDir",
    "TauRun",
    "TauScoreRun",
    "check_output_folder",
    "load_settings",
    "read_json",
    "read_records",
    "read_rows",
    "RESUMABLE_KEYS",
    "check_resume",
    "recipe_changes",
    "save_recipe",
]
