"""The runner core shared by datagen and evaluation, in layers (see docs/architecture.md):

- episode: one dialogue, pure (:mod:`datagen.simulate.episode`)
- build: the agent and the simulated user of one episode from a typed config (:mod:`.build`)
- batch: many jobs, concurrency, one row per finished job, resume, error rows (:mod:`.batch`)
- progress: the one status line every batch shows (:mod:`.progress`)
- executor: where a batch's jobs run, this process or Ray actors (:mod:`.executor`; the protocols
  between job code and executors in :mod:`.jobs`, the settings in :mod:`datagen.recipe.executor`)
"""
