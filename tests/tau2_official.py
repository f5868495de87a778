"""τ²-bench's own code on a results file, in a process of its own: its ``Results`` loader, its
``evaluate_simulation`` on every simulation and its metrics. Prints one JSON object.

    python tests/tau2_official.py RESULTS_JSON... [--evaluate] [--fill-rewards]

τ²'s ``tau2.evaluator.evaluator`` imports litellm at import time (for the LLM judge of NL assertions
and its user/agent clients). litellm is not installed here, and the rule-based evaluators never call
it, so this process gives that import an empty stand-in that raises if anything does call it. It runs
apart from the test process, which must never hold litellm (``test_adapter_never_loads_litellm``).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path


def _unavailable(*args, **kwargs):
    raise RuntimeError("litellm is a stand-in in this process: no LLM call may be made")


def _stand_in_litellm() -> None:
    try:
        import litellm  # noqa: F401

        return
    except ModuleNotFoundError:
        pass
    root = types.ModuleType("litellm")
    root.completion = root.completion_cost = _unavailable
    root.enable_cache = root.disable_cache = lambda *args, **kwargs: None  # configured at import
    caching = types.ModuleType("litellm.caching")
    caching_caching = types.ModuleType("litellm.caching.caching")
    caching_caching.Cache = _unavailable
    main = types.ModuleType("litellm.main")
    main.ModelResponse = main.Usage = type("Unavailable", (), {})
    sys.modules.update(
        {
            "litellm": root,
            "litellm.caching": caching,
            "litellm.caching.caching": caching_caching,
            "litellm.main": main,
        }
    )


def official(path: Path, evaluate: bool, fill: bool) -> dict[str, object]:
    """What τ²'s own code says of one results file; with ``fill``, each simulation's reward_info is
    set to τ²'s evaluate_simulation and the file saved again by τ²'s own Results.save."""
    from tau2.data_model.simulation import Results
    from tau2.metrics.agent_metrics import compute_metrics

    results = Results.load(path)
    evaluated: dict[str, object] = {}
    if evaluate or fill:
        from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

        tasks = {t.id: t for t in results.tasks}
        domain = results.info.environment_info.domain_name
        for sim in results.simulations:
            try:
                info = evaluate_simulation(sim, tasks[sim.task_id], EvaluationType.ALL, False, domain)
            except Exception as exc:  # reported, so the test shows what τ² said
                evaluated[sim.id] = f"{type(exc).__name__}: {exc}"
                continue
            evaluated[sim.id] = info.reward
            if fill:
                sim.reward_info = info
    if fill:
        results.save(path)
    metrics = compute_metrics(results)
    return {
        "recorded": {s.id: s.reward_info.reward for s in results.simulations},
        "terminations": {s.id: s.termination_reason.value for s in results.simulations},
        "evaluated": evaluated,
        "pass_hat_ks": {str(k): float(v) for k, v in metrics.pass_hat_ks.items()},
        "avg_reward": float(metrics.avg_reward),
        "domain": results.info.environment_info.domain_name,
        "num_trials": results.info.num_trials,
    }


def run_official(*paths: Path, evaluate: bool = False, fill: bool = False) -> dict[str, dict]:
    """For tests: this script on ``paths`` in a process of its own; what τ² said of each file."""
    import subprocess

    flags = ["--evaluate"] * evaluate + ["--fill-rewards"] * fill
    done = subprocess.run(
        [sys.executable, __file__, *map(str, paths), *flags], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def main(argv: list[str]) -> None:
    _stand_in_litellm()
    from loguru import logger

    logger.disable("tau2")
    paths = [a for a in argv if not a.startswith("--")]
    evaluate, fill = "--evaluate" in argv, "--fill-rewards" in argv
    print(json.dumps({p: official(Path(p), evaluate, fill) for p in paths}))


if __name__ == "__main__":
    main(sys.argv[1:])
