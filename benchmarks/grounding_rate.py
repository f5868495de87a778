"""How often Phase 1's grounded proposal finds executable arguments for each write tool.

For every native domain, ``--draws`` sampler draws (the default SamplerConfig: one user and 3-8 of
their records) are made on the training database; for each draw, each of the domain's write tools is
grounded on its own (``ground_actions`` with the default 12 argument tries, no redraw). A tool that
rarely grounds is a tool the generated dataset will rarely teach. Prints the shares per tool and per
domain for three set-ups (arguments from the sampled records alone; anchored on the user's records;
anchored, with the user chosen by the ``StatePlanner`` as the pipeline does), names the tools still
under 25%, and ends with the RESULT line: the pipeline set-up's share averaged over every write tool
of the domains (each tool counts once, as each is one skill the dataset should teach).

    .venv/bin/python benchmarks/grounding_rate.py [--draws 60] [--domains retail airline bank]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from datagen.blueprint.grounding import StatePlanner, ground_actions
from datagen.blueprint.samplers import FewshotPool, UserIndex, draw_context, load_traits
from datagen.envs.registry import get_domain
from datagen.recipe.datagen import GroundedProposalConfig, SamplerConfig

TARGET_MEAN_TOOL_SHARE = 0.75
RARE = 0.25


def tool_shares(domain_name: str, draws: int) -> dict[str, tuple[int, int, int, int]]:
    """Write tool -> (draws where it grounded from the sampled records, anchored, with a chosen user, draws)."""
    domain = get_domain(domain_name)
    seed = domain.train_seed
    users = UserIndex(domain.new_env(seed))
    samplers, tries = SamplerConfig(), GroundedProposalConfig().argument_tries
    pool, traits = FewshotPool([], 0), load_traits()
    tools = sorted(t.name for t in domain.write_tools())
    planner = StatePlanner(domain, users, seed)
    counts = {t: [0, 0, 0, 0] for t in tools}
    for index in range(draws):
        for tool in tools:
            # The user is chosen for the tool under test; the draw is otherwise the pipeline's.
            draw = draw_context(domain, users, random.Random(index), index, samplers, pool, traits)
            planned = draw_context(
                domain, users, random.Random(index), index, samplers, pool, traits,
                choose_user=lambda _, rng, tool=tool: planner.choose_user([tool], rng),
            )  # fmt: skip
            results = [
                ground_actions(domain, domain.new_env(seed), [tool], d.records, random.Random(f"{index}-{tool}"),
                               tries, planner=p, user_id=d.user_id)[0]
                for d, p in ((draw, None), (draw, planner), (planned, planner))
            ]  # fmt: skip
            for column, actions in enumerate(results):
                counts[tool][column] += int(bool(actions))
            counts[tool][3] += 1
    return {t: tuple(c) for t, c in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=60)
    parser.add_argument("--domains", nargs="+", default=["retail", "airline", "bank"])
    args = parser.parse_args()

    pipeline_shares: dict[str, float] = {}
    print(f"{'domain':<10}{'write tool':<36}{'sampled records':>16}{'anchored':>10}{'+ chosen user':>15}")
    for name in args.domains:
        started = time.perf_counter()
        shares = tool_shares(name, args.draws)
        for tool, (sampled, anchored, planned, n) in shares.items():
            print(f"{name:<10}{tool:<36}{sampled / n:>16.2f}{anchored / n:>10.2f}{planned / n:>15.2f}")
            pipeline_shares[f"{name}.{tool}"] = planned / n
        mean = [sum(c[k] / c[3] for c in shares.values()) / len(shares) for k in range(3)]
        print(f"{name:<10}{'(mean over tools)':<36}{mean[0]:>16.2f}{mean[1]:>10.2f}{mean[2]:>15.2f}"
              f"   [{args.draws} draws, {time.perf_counter() - started:.1f} s]")  # fmt: skip
    rare = [f"{tool} {share:.2f}" for tool, share in pipeline_shares.items() if share < RARE]
    print(f"tools grounded in under {RARE:.0%} of draws: {', '.join(rare) or 'none'}")
    mean = sum(pipeline_shares.values()) / len(pipeline_shares)
    verdict = "PASS" if mean >= TARGET_MEAN_TOOL_SHARE else "FAIL"
    print(f"RESULT grounding_mean_tool_share: {mean:.2f} (target >= {TARGET_MEAN_TOOL_SHARE}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
