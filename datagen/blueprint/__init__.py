"""Phase 1: task blueprints (samplers, proposal, validators, committee, refinement, recombination).

``produce_blueprints`` (in ``datagen.blueprint.runner``) is the async producer the pipeline consumes;
``apigen-mt blueprints`` (``datagen.commands.blueprints``) runs it from a recipe.
"""
