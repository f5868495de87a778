"""The runner core shared by datagen and evaluation, in layers (see ARCHITECTURE.md):

- episode: one dialogue, pure (:mod:`datagen.simulate.episode`)
- build: the agent and the simulated user of one episode from a typed config (:mod:`.build`)
- batch: many jobs, concurrency, one row per finished job, resume, error rows (:mod:`.batch`)
- progress: the one status line every batch shows (:mod:`.progress`)
"""
