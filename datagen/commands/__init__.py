"""The argparse front ends of every datagen command (`apigen-mt models`, `envs`, `blueprints`,
`simulate`, `generate`, `export`): the top layer of ``datagen``. Each parses its flags, merges them over the
recipe and calls the layers below; ``datagen.cli`` finds them through the ``apigen_mt.commands``
entry points and imports only the one that is named, so each keeps its heavy imports inside
``main``.
"""
