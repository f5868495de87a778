"""Does our data teach? Generate, export, evaluate, fine-tune, evaluate again: the loop on this machine.

    .venv/bin/python benchmarks/learnability.py [--out outputs/learnability] [--drafts 12] [--epochs 2]

Every step is the real command line, one after another (one vLLM engine alive at a time; logs in
``<out>/logs/<step>.log``), and a step whose output exists is reused, so a stopped run continues:

1. Phase 1 + Phase 2 on each native domain with the CPU demo recipes (``recipes/datagen/demo*.yaml``:
   grounded proposal, replay agent, scripted user), ``--drafts`` task drafts each: the scripted user
   says every value a write call needs, so the arguments in this data can be learnt;
2. export each run with the grouped split (``--test``); only dialogues that pass every check,
   provenance included;
3. ``eval next-action`` of the base model on the test splits, and ``eval tau`` pass^1 on held-out
   retail gold tasks against the scripted user (``--user-mode scripted``, the same user before and after);
4. SFT of the embedded model on the train splits, every assistant turn a target with the turns
   before it as context, as the paper trains (``training/sft.py`` through ``accelerate launch``;
   LoRA or full, a cosine schedule over ``--epochs``, a checkpoint every ``--save-every`` steps);
5. ``eval next-action`` of every checkpoint, ``eval tau`` of the last;
6. the learning curve (decode rate, name match, exact-call match, argument precision and recall per
   checkpoint) and a PNG; base and fine-tuned figures with 95% intervals (a bootstrap over held-out
   dialogues; τ pass^1 over tasks, with the paired difference); and
   ``RESULT learnability_exact_match`` (the last checkpoint's exact-call match on held-out turns that
   should call a tool; target >= 0.30; argument recall's target, >= 0.5, is printed beside it).

Cost on a CPU is set by tokens: every example carries the policy and the tool list (~4k tokens). One
example per turn pays them once per turn (a dialogue has ~6 assistant turns), so the run trains each
dialogue as one sequence with the loss on every assistant turn: the same targets on the same contexts
(``tests/test_training_templates.py`` holds the smollm2 template to that) at 1/6 of the tokens, ~20 s
a dialogue on 2 quiet cores with gradient checkpointing off (13 GB peak; this run is alone on the machine).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datagen.rundir import DatagenRun, NextActionRun, TauRun, read_rows  # noqa: E402
from evaluation.intervals import (  # noqa: E402
    Interval,
    bootstrap_statistic,
    paired_difference,
    pass_k_intervals,
)
from evaluation.tau.harness import read_trials  # noqa: E402

DOMAINS = ("retail", "airline", "bank")
RECIPES = {
    d: ROOT / "recipes" / "datagen" / ("demo.yaml" if d == "retail" else f"demo-{d}.yaml") for d in DOMAINS
}
SFT_RECIPES = {m: ROOT / "recipes" / "sft" / "smollm2-135m" / f"cpu_{m}.yaml" for m in ("lora", "full")}
ACCELERATE_CONFIG = ROOT / "recipes" / "accelerate" / "cpu.yaml"
EXACT_TARGET, RECALL_TARGET = 0.30, 0.50
CURVE = (("decode_rate", "decode"), ("name_match", "name"), ("exact_match", "exact"),
         ("argument_precision", "arg P"), ("argument_recall", "arg R"), ("decision_accuracy", "decision"))  # fmt: skip


@dataclass(frozen=True)
class Settings:
    out: Path
    domains: tuple[str, ...]
    drafts: int
    test: float
    method: str
    learning_rate: float
    epochs: float
    save_every: int
    batch: int
    max_tokens: int
    tau_tasks: int
    tau_max_steps: int
    bf16: bool = False  # autocast where the CPU has native bf16 (scripts/demo.py: faster there)


def _demo():
    """scripts/demo.py's step runner (a subprocess per step, a live status line, logs per step)."""
    spec = importlib.util.spec_from_file_location("apigen_demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["apigen_demo"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def sft_recipe(settings: Settings) -> Path:
    """The CPU SFT recipe with the exports' train splits as sources and this run's schedule."""
    recipe = yaml.safe_load(SFT_RECIPES[settings.method].read_text(encoding="utf-8"))
    recipe.update(
        sources=[
            {"path": str(settings.out / "data" / d), "layout": "messages", "split": "train"}
            for d in settings.domains
        ],
        # Every assistant turn is a target with the turns before it as context, as the paper trains,
        # in one sequence per dialogue: per-turn examples would pay the ~4k prompt tokens once per turn.
        per_turn_examples=False,
        merge_lora=False,  # each checkpoint is merged for evaluation below
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,  # a fraction of the steps (transformers 5: warmup_steps < 1)
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch,
        gradient_checkpointing=False,  # 20 s a step instead of 24; 13 GB peak is fine for a run alone
        save_strategy="steps",
        save_steps=settings.save_every,
        save_total_limit=None,
        logging_steps=1,
        bf16=settings.bf16,
        output_dir=str(settings.out / "sft"),
    )
    path = settings.out / "sft_recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"# accelerate launch --config_file {ACCELERATE_CONFIG.relative_to(ROOT)} training/sft.py --config {path}\n"
    path.write_text(head + yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


@functools.cache
def held_out_domains(settings: Settings) -> list[str]:
    """The domains whose export has a test split (a domain with very few verified blueprints may have
    none: the grouped split keeps a blueprint and its recombinations on one side)."""
    held: list[str] = []
    for domain in settings.domains:
        facts = settings.out / "data" / domain / "export.json"
        splits = json.loads(facts.read_text()).get("splits", {}) if facts.is_file() else {}
        if (splits.get("test") or {}).get("rows"):
            held.append(domain)
        else:
            print(f"next-action: {domain} has no test rows (splits {sorted(splits)}); it is only trained on")
    return held


def next_action_step(demo: Any, settings: Settings, label: str, model: str) -> Any:
    out = settings.out / "eval" / "next_action" / label
    data = [arg for d in held_out_domains(settings) for arg in ("--data", str(settings.out / "data" / d))]
    command = demo.cli("eval", "next-action", *data, "--split", "test", "--model", model,
                       "--max-tokens", str(settings.max_tokens), "--out", str(out), "--resume")  # fmt: skip
    return demo.Step(f"next-action-{label}", f"next-action, {label}", command, NextActionRun(out).summary)


def tau_step(demo: Any, settings: Settings, label: str, model: str) -> Any:
    out = settings.out / "eval" / "tau" / label
    command = demo.cli("eval", "tau", "--env", "retail", "--tasks", "gold", "--limit", str(settings.tau_tasks),
                       "--trials", "1", "--model", model, "--user-mode", "scripted",
                       "--max-steps", str(settings.tau_max_steps), "--max-tokens", str(settings.max_tokens),
                       "--out", str(out), "--resume")  # fmt: skip
    return demo.Step(
        f"tau-{label}",
        f"τ pass^1, {label} ({settings.tau_tasks} retail gold tasks)",
        command,
        TauRun(out).summary,
    )


def data_steps(demo: Any, settings: Settings) -> list[Any]:
    steps = []
    for domain in settings.domains:
        run = settings.out / "runs" / domain
        steps.append(demo.Step(
            f"generate-{domain}", f"Phase 1 + 2 on {domain} ({settings.drafts} drafts, grounded proposal, replay agent, "
            "scripted user)",
            demo.cli("generate", "--config", str(RECIPES[domain]), "--out", str(run), "--limit", str(settings.drafts))
            + (["--resume"] if DatagenRun(run).is_run() else []),
            DatagenRun(run).phase2_stats,
        ))  # fmt: skip
        data = settings.out / "data" / domain
        steps.append(demo.Step(
            f"export-{domain}", f"export {domain} (grouped split, test {settings.test}; dialogues that pass every check)",
            demo.cli("export", str(run), "--out", str(data), "--output-format", "hf", "--test", str(settings.test)),
            data / "README.md",
        ))  # fmt: skip
    return steps


def sft_step(demo: Any, settings: Settings) -> Any:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE_CONFIG),
               "training/sft.py", "--config", str(sft_recipe(settings))]  # fmt: skip
    if any((settings.out / "sft").glob("checkpoint-*")):
        command += ["--resume_from_checkpoint", "latest"]
    return demo.Step(
        "sft", f"SFT ({settings.method}, lr {settings.learning_rate} cosine, {settings.epochs:g} epochs × "
        f"{settings.batch} dialogue(s) a step, the loss on every assistant turn)",
        command, settings.out / "sft" / "train_metrics.json",
    )  # fmt: skip


def checkpoints(settings: Settings) -> list[tuple[int, Path]]:
    """(step, folder) of every Trainer checkpoint, not the ``-merged`` folders made beside them."""
    found = [
        (int(p.name.removeprefix("checkpoint-")), p)
        for p in (settings.out / "sft").glob("checkpoint-*")
        if p.is_dir() and p.name.removeprefix("checkpoint-").isdigit()
    ]
    return sorted(found)


def servable(settings: Settings, checkpoint: Path) -> Path:
    """A model directory vLLM can load: the checkpoint itself (full fine-tuning) or its LoRA merged."""
    if settings.method == "full":
        return checkpoint
    merged = checkpoint.parent / f"{checkpoint.name}-merged"
    if not (merged / "apigen_mt.json").is_file():
        from training.chat_templates import resolve_template
        from training.export import export_merged

        export_merged(checkpoint, merged, resolve_template("smollm2"), {"dtype": "float32"})
    return merged


def run(demo: Any, step: Any, settings: Settings, console: Any, timings: dict[str, float]) -> None:
    if (ROOT / step.produces).exists() or step.produces.exists():
        console.print(f"[dim]reusing {step.key}: {step.produces} exists[/dim]")
        return
    console.rule(step.title)
    console.print("$ " + " ".join(step.command), style="dim", highlight=False, markup=False)
    timings[step.key] = demo.run_step(step, settings.out / "logs", console)
    console.print(f"✓ {step.key} in {timings[step.key]:.0f}s")


def train_losses(settings: Settings) -> dict[int, float]:
    state = settings.out / "sft" / "trainer_state.json"
    if not state.is_file():
        return {}
    logs = json.loads(state.read_text()).get("log_history", [])
    return {int(e["step"]): float(e["loss"]) for e in logs if "loss" in e and "step" in e}


def curve_rows(settings: Settings) -> list[tuple[str, int, dict[str, Any]]]:
    rows = []
    base = NextActionRun(settings.out / "eval" / "next_action" / "base").read_summary()
    if base:
        rows.append(("base", 0, base["overall"]))
    for step, _ in checkpoints(settings):
        summary = NextActionRun(settings.out / "eval" / "next_action" / f"step-{step}").read_summary()
        if summary:
            rows.append((f"step {step}", step, summary["overall"]))
    return rows


def mean_losses(losses: dict[int, float], steps: list[int]) -> dict[int, float]:
    """For each checkpoint step, the mean training loss of the steps since the one before it: one
    step's loss (batch 1) swings with the dialogue it happened to see."""
    means: dict[int, float] = {}
    previous = 0
    for step in sorted(steps):
        window = [loss for s, loss in losses.items() if previous < s <= step]
        if window:
            means[step] = sum(window) / len(window)
        previous = step
    return means


def _pct(value: float | None) -> str:
    return "    –" if value is None else f"{100 * value:5.1f}"


def print_curve(settings: Settings, rows: list[tuple[str, int, dict[str, Any]]]) -> None:
    losses = mean_losses(train_losses(settings), [step for _, step, _ in rows if step])
    print(
        f"\nlearning curve on the test splits ({', '.join(held_out_domains(settings))}); % of turns that should call a tool; "
        "loss: mean training loss since the row above"
    )
    print(f"{'model':<12}{'loss':>7}{'turns':>7}{'call':>6}" + "".join(f"{title:>10}" for _, title in CURVE))
    for label, step, figures in rows:
        loss = f"{losses[step]:7.3f}" if step in losses else "      –"
        cells = "".join(f"{_pct(figures.get(key)):>10}" for key, _ in CURVE)
        print(f"{label:<12}{loss}{figures['turns']:>7}{figures['should_call_turns']:>6}{cells}")
    if rows:
        print("outcomes of the last row:", rows[-1][2].get("outcomes"))


def plot_curve(settings: Settings, rows: list[tuple[str, int, dict[str, Any]]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.0), dpi=110)
    steps = [step for _, step, _ in rows]
    for key, title in CURVE:
        ax.plot(steps, [100 * (f.get(key) or 0.0) for _, _, f in rows], "-o", label=title)
    ax.axhline(100 * EXACT_TARGET, ls=":", color="gray")
    ax.axhline(100 * RECALL_TARGET, ls="--", color="gray", alpha=0.6)
    ax.set_xlabel("SFT optimizer steps (0 = base model)")
    ax.set_ylabel("% of test turns")
    ax.set_ylim(0, 102)
    ax.set_title(f"next-action on held-out dialogues ({settings.method}, lr {settings.learning_rate})")
    losses = train_losses(settings)
    if losses:
        twin = ax.twinx()
        steps = sorted(losses)
        twin.plot(steps, [losses[s] for s in steps], color="black", alpha=0.3, lw=1, label="train loss")
        twin.set_ylabel("train loss")
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    path = settings.out / "learning_curve.png"
    fig.savefig(path)
    plt.close(fig)
    return path


# figure -> (numerator, denominator) of the per-dialogue counts it is a ratio of
RATIOS = {"exact_match": ("exact", "calls"), "name_match": ("name", "calls"),
          "argument_precision": ("right", "predicted"), "argument_recall": ("right", "gold")}  # fmt: skip


def dialogue_counts(settings: Settings, label: str) -> list[Counter[str]]:
    """Per held-out dialogue: its turns that should call a tool, their exact and name matches, and
    the arguments predicted, expected and right (``eval next-action``'s turn rows)."""
    by_dialogue: dict[str, Counter[str]] = defaultdict(Counter)
    for row in read_rows(NextActionRun(settings.out / "eval" / "next_action" / label).turns):
        if row.get("error") or not row.get("should_call"):
            continue
        counts = by_dialogue[f"{row['source']}::{row['dialogue_id']}"]
        counts.update(calls=1, exact=int(row["exact_match"]), name=int(row["name_match"]),
                      predicted=row["arguments_predicted"], gold=row["arguments_gold"],
                      right=row["arguments_right"])  # fmt: skip
    return list(by_dialogue.values())


def turn_intervals(settings: Settings, label: str) -> dict[str, Interval]:
    """Each figure of RATIOS with a bootstrap interval over held-out dialogues (the turns of one
    dialogue are not independent of each other)."""
    counts = dialogue_counts(settings, label)

    def ratio(part: str, whole: str):
        def statistic(indices, _values) -> float:
            total = sum(counts[i][whole] for i in indices)
            return sum(counts[i][part] for i in indices) / total if total else 0.0

        return statistic

    return {key: bootstrap_statistic(range(len(counts)), ratio(*parts)) for key, parts in RATIOS.items()}


def tau_outcomes(settings: Settings, label: str) -> dict[str, list[bool]]:
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for row in sorted(read_trials(TauRun(settings.out / "eval" / "tau" / label)), key=lambda r: r["trial"]):
        outcomes[row["task_id"]].append(bool(row["success"]))
    return dict(outcomes)


def tau_lines(settings: Settings) -> list[str]:
    """τ pass^1 before and after, each with its bootstrap interval over tasks, and their paired difference."""
    runs = {label: tau_outcomes(settings, label) for label in ("base", "tuned")}
    lines = []
    for label, title in (("base", "before (base)"), ("tuned", "after (fine-tuned)")):
        found = pass_k_intervals(runs[label]) if runs[label] else {}
        shown = found[1].text() if 1 in found else "–"
        lines.append(f"τ pass^1 {title}: {shown} ({len(runs[label])} retail gold tasks, scripted user)")
    means = {label: {t: sum(v) / len(v) for t, v in runs[label].items()} for label in runs}
    paired = paired_difference(means["tuned"], means["base"])
    verdict = "within noise" if paired.within_noise else "beyond noise"
    lines.append(
        f"τ pass^1 difference (after - before): {paired.difference.text()} on {paired.items} tasks, {verdict}"
    )
    return lines


def data_figures(settings: Settings) -> str:
    lines = []
    for domain in settings.domains:
        stats = DatagenRun(settings.out / "runs" / domain).read_phase2_stats()
        facts_path = settings.out / "data" / domain / "export.json"
        facts = json.loads(facts_path.read_text()) if facts_path.is_file() else {}
        splits = {s: v["rows"] for s, v in (facts.get("splits") or {}).items()}
        provenance = facts.get("provenance") or {}
        lines.append(
            f"{domain:<8} attempts {stats.get('attempts', 0):>3}, verified {stats.get('successful_trajectories', 0):>3}, "
            f"failures {stats.get('failures', {})}; exported {splits} "
            f"({provenance.get('exported_rows_ungrounded', 0)} ungrounded)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/learnability"),
        help="output folder; a rerun reuses its steps",
    )
    parser.add_argument(
        "--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS, help="native domains to make data on"
    )
    parser.add_argument("--drafts", type=int, default=12, help="task drafts per domain")
    parser.add_argument("--test", type=float, default=0.25, help="test fraction of the grouped split")
    parser.add_argument("--method", choices=("lora", "full"), default="lora", help="LoRA or full fine-tuning")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    parser.add_argument("--epochs", type=float, default=2.0, help="passes over the train splits")
    parser.add_argument(
        "--save-every", type=int, default=15, help="a checkpoint (and an evaluation) every N steps"
    )
    parser.add_argument("--batch", type=int, default=1, help="dialogues per optimizer step")
    parser.add_argument("--max-tokens", type=int, default=128, help="new tokens per evaluated turn")
    parser.add_argument("--tau-tasks", type=int, default=5, help="held-out retail gold tasks for τ pass^1")
    parser.add_argument(
        "--tau-max-steps", type=int, default=30, help="steps per τ dialogue (eval tau's default, as τ-bench)"
    )
    args = parser.parse_args(argv)
    demo = _demo()
    settings = Settings(
        out=args.out, domains=tuple(args.domains), drafts=args.drafts, test=args.test, method=args.method,
        learning_rate=args.learning_rate, epochs=args.epochs, save_every=args.save_every, batch=args.batch,
        max_tokens=args.max_tokens, tau_tasks=args.tau_tasks, tau_max_steps=args.tau_max_steps,
        bf16=demo.cpu_has_native_bf16(),
    )  # fmt: skip
    from rich.console import Console

    console = Console(stderr=True)
    (settings.out / "logs").mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    console.print(f"{os.cpu_count()} cores; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    started = time.monotonic()
    timings: dict[str, float] = {}
    try:
        for step in data_steps(demo, settings):
            run(demo, step, settings, console, timings)
        run(demo, next_action_step(demo, settings, "base", "embedded"), settings, console, timings)
        run(demo, tau_step(demo, settings, "base", "embedded"), settings, console, timings)
        run(demo, sft_step(demo, settings), settings, console, timings)
        found = checkpoints(settings)
        for step, checkpoint in found:
            merged = time.monotonic()
            model = servable(settings, checkpoint)
            timings[f"merge-{step}"] = time.monotonic() - merged
            run(
                demo, next_action_step(demo, settings, f"step-{step}", str(model)), settings, console, timings
            )
        if found:
            run(
                demo,
                tau_step(demo, settings, "tuned", str(servable(settings, found[-1][1]))),
                settings,
                console,
                timings,
            )
    except demo.StepFailed as exc:
        console.print(f"[bold red]stopped:[/bold red] {exc}", highlight=False)
        return 1
    wall = time.monotonic() - started

    rows = curve_rows(settings)
    print("data:\n" + data_figures(settings))
    print_curve(settings, rows)
    png = plot_curve(settings, rows) if rows else None
    final = f"step-{found[-1][0]}" if found else None
    print_intervals(settings, final)
    print("\n".join(tau_lines(settings)))
    print("step timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(f"wall time of this session: {wall / 60:.1f} min; load average at the end {os.getloadavg()[0]:.1f}")
    if png:
        print(f"curve: {png}")
    tuned = turn_intervals(settings, final) if final else {}
    exact = tuned["exact_match"].value if tuned else 0.0
    recall = tuned["argument_recall"].value if tuned else 0.0
    print(
        f"argument recall {recall:.3f} (target >= {RECALL_TARGET:.2f}) {'PASS' if recall >= RECALL_TARGET else 'FAIL'}"
    )
    print(f"RESULT learnability_exact_match: {exact:.3f} (target >= {EXACT_TARGET:.2f}) "
          f"{'PASS' if exact >= EXACT_TARGET else 'FAIL'}")  # fmt: skip
    return 0


def print_intervals(settings: Settings, final: str | None) -> None:
    """Base and fine-tuned figures on held-out turns that should call a tool, with their intervals."""
    columns = [("base", "base")] + ([(final, f"fine-tuned ({final})")] if final else [])
    figures = {label: turn_intervals(settings, label) for label, _ in columns}
    print("\nheld-out turns that should call a tool; 95% bootstrap interval over dialogues")
    print(f"{'':<20}" + "".join(f"{title:<26}" for _, title in columns))
    for key in RATIOS:
        print(f"{key:<20}" + "".join(f"{figures[label][key].text():<26}" for label, _ in columns))


if __name__ == "__main__":
    raise SystemExit(main())
