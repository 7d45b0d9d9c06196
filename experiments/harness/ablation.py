"""Ablation harness: a grid of cells, each a tokenizer + planner trained and evaluated in its own run dir.

Every cell trains through the normal entry point (`hiertok train tokenizer|planner`, called in-process),
so under `accelerate launch` the cells train distributed, unchanged. A cell whose `result.json` exists is
skipped; a cell whose training was interrupted resumes from its last checkpoint. Evaluation runs on the
main process. The experiment scripts (experiments/ablate_*.py) define grids and plots on top of this.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from accelerate import PartialState

from hiertok.atomic import atomic_write_text
from hiertok.errors import UserError
from hiertok.tokenizer import WEIGHTS_FILE
from hiertok.training import CHECKPOINT_DIR, METRICS_FILE, train_seconds

RESULT_FILE, SETTINGS_FILE = "result.json", "settings.json"


@dataclass
class Cell:
    """One point of a grid: a name (its directory), its overrides and the labels it is plotted by."""

    name: str
    tokenizer_overrides: list[str]
    labels: dict[str, str | int | float] = field(default_factory=dict)
    planner_overrides: list[str] = field(default_factory=list)


@dataclass
class Budget:
    """What every cell of a grid shares: base configs, data, training steps and evaluation size."""

    tokenizer_config: str | None = None  # YAML files (None: the built-in defaults)
    planner_config: str | None = None
    data: str | None = None  # a data.source override for both stages (None: the configs')
    tokenizer_steps: int | None = None  # train.max_steps overrides (None: the configs')
    planner_steps: int | None = None
    eval_docs: int = 100  # held-out documents for every evaluation
    prompts: int = 0  # generations for plan adherence / grammar (0: teacher-forced planner metrics only)
    baseline: str | None = None  # a flat LM run whose continuations of the same prompts are scored beside
    tokenizer_overrides: list[str] = field(default_factory=list)  # for every cell, before the cell's own
    planner_overrides: list[str] = field(default_factory=list)
    planner: bool = True  # False: a cell is its tokenizer alone, scored on reconstruction (the pixel grid)


# The budget rule a cell's table states: a tokenizer counts as trained when its held-out reconstruction loss fell
# by less than this fraction over the last TRAINED_SPAN of its steps (held-out checks every fifth of the steps).
TRAINED_GAIN, TRAINED_SPAN = 0.01, 0.2
RULE = (
    f"Budget rule: a cell counts as trained when its tokenizer's held-out reconstruction loss fell by less than "
    f"{TRAINED_GAIN:.0%} over its last {TRAINED_SPAN:.0%} of steps (`trained`: seeds that met it; `last_fifth_gain`: "
    "that fall; `last_fifth_exact_gain`: the same span's rise in held-out exact match at full depth; `steps`: each "
    "run's tokenizer steps). Differences inside the seeds' spread (± one sd) are not results."
)


def trained_rule(run_dir: Path) -> dict[str, float | int | bool | None]:
    """A tokenizer run's steps, the relative fall of its held-out `recon` over its last TRAINED_SPAN of steps
    (from the last check at or before that point to the final one), whether that is under TRAINED_GAIN, and the
    same span's rise in held-out exact match at full depth (a reconstruction loss nearing 0 keeps falling by
    large fractions while exact match levels off).

    Returns:
        {"steps", "last_fifth_gain", "trained", "last_fifth_exact_gain"}; all but the steps None without an
        earlier check.
    """
    evals = [m for m in _metrics(run_dir) if m.get("split") == "eval" and "recon" in m]
    checks = sorted(((m["step"], m) for m in evals), key=lambda check: check[0])
    if not checks:
        return {"steps": None, "last_fifth_gain": None, "trained": None, "last_fifth_exact_gain": None}
    last_step, last = checks[-1]
    earlier = [m for step, m in checks if step <= (1 - TRAINED_SPAN) * last_step]
    if not earlier or earlier[-1]["recon"] <= 0:
        return {"steps": last_step, "last_fifth_gain": None, "trained": None, "last_fifth_exact_gain": None}
    before = earlier[-1]
    gain = (before["recon"] - last["recon"]) / before["recon"]
    exact = max((k for k in last if k.startswith("exact_match_k")), key=lambda k: int(k[13:]), default=None)
    rise = last[exact] - before[exact] if exact and exact in before else None
    trained = bool(gain < TRAINED_GAIN)
    return {"steps": last_step, "last_fifth_gain": gain, "trained": trained, "last_fifth_exact_gain": rise}


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def with_seeds(cells: list[Cell], seeds: int) -> list[Cell]:
    """Each cell once per seed 0..seeds-1: named <cell>-s<seed>, both stages trained with train.seed=<seed>, labelled
    with its `seed` and its seedless `base_cell`."""
    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    return [
        Cell(
            f"{c.name}-s{seed}",
            [*c.tokenizer_overrides, f"train.seed={seed}"],
            {**c.labels, "base_cell": c.name, "seed": seed},
            [*c.planner_overrides, f"train.seed={seed}"],
        )
        for c in cells
        for seed in range(seeds)
    ]


def _budget_overrides(data: str | None, steps: int | None, extra: list[str]) -> list[str]:
    out = [f"data.source={data}"] if data else []
    if steps is not None:  # held-out checks every fifth of the steps: the budget rule (`trained_rule`) reads them
        every = max(1, steps // 5)
        out += [f"train.max_steps={steps}", f"train.eval_every={every}", f"train.save_every={max(1, steps // 2)}"]
    return out + ["train.progress=false", *extra]


def train_stage(stage: str, config: str | None, run_dir: Path, overrides: list[str]) -> None:
    """Train one stage into `run_dir` through the CLI, resuming an interrupted run, skipping a finished one.

    Raises:
        RuntimeError: the CLI reported an error (its message was printed).
    """
    from hiertok.cli import main

    if (run_dir / WEIGHTS_FILE).exists():
        return
    started = (run_dir / CHECKPOINT_DIR).is_dir() or (run_dir / METRICS_FILE).exists()
    args = ["train", stage, "--out", str(run_dir), *(["--config", config] if config else [])]
    code = main([*args, *(["--resume"] if started else []), *overrides])
    if code != 0:
        raise RuntimeError(f"training the {stage} of {run_dir.parent.name} failed (exit {code})")


def evaluate_cell(tok_dir: Path, plan_dir: Path, budget: Budget) -> dict[str, float | str | None]:
    """Tokenizer, planner and codelength metrics of one cell, as one flat row."""
    from hiertok.codelength import evaluate_codelength_run
    from hiertok.eval_planner import evaluate_planner_run
    from hiertok.evaluate import evaluate_run

    tok = evaluate_run(str(tok_dir), budget.data, budget.eval_docs)
    plan = evaluate_planner_run(
        str(plan_dir), budget.data, budget.eval_docs, prompts=budget.prompts, baseline=budget.baseline
    )
    code = evaluate_codelength_run(str(plan_dir), None, budget.data, budget.eval_docs)
    levels = len(tok.utilization_by_level)
    row: dict[str, float | str | None] = {
        "code_bits": tok.bits_per_idea_by_prefix[str(levels)],
        "exact_match_k1": tok.exact_match_by_prefix["1"],
        "exact_match_full": tok.exact_match_by_prefix[str(levels)],
        "exact_match_by_prefix": json.dumps(tok.exact_match_by_prefix),
        "exact_match_unseen": tok.exact_match_unseen,
        "event_nmi_level1": tok.event_nmi_level1,
        "utilization_mean": sum(tok.utilization_by_level.values()) / levels,
        "utilization_by_level": json.dumps(tok.utilization_by_level),
        "planner_bits_per_idea": plan.bits_per_idea,
        "planner_bits_level1": plan.bits_per_idea_by_level["1"],
        "next_top1_level1": plan.next_idea_top1["level1"],
        "next_top1_full": plan.next_idea_top1["full"],
        "bigram_top1_level1": plan.bigram_top1["level1"],
        "plan_adherence_level1": plan.plan_adherence_level1,
        "grammar_valid": plan.grammar_valid,
        "story_valid": plan.story_valid,
        "friend_is_hero": plan.friend_is_hero,
        "goal_reached": plan.goal_reached,
        "goal_exact": plan.goal_exact,
        "flat_grammar_valid": (plan.flat or {}).get("grammar_valid"),
        "flat_story_valid": (plan.flat or {}).get("story_valid"),
        "bpb_hier": code.bpb_hier,
        "bpb_hier_codes": code.bpb_hier_codes,
        "bpb_hier_tokens": code.bpb_hier_tokens,
    }
    for key, value in (tok.continuous_next_idea or {}).items():
        row[f"continuous_next_{key}"] = value
    for key, value in (tok.story_valid_decoded or {}).items():
        row[f"decoded_story_valid_{key}"] = value
    row["cast_kept_true_story"] = tok.cast_kept_true_story
    return row


def evaluate_tokenizer(tok_dir: Path, budget: Budget) -> dict[str, float | str | None]:
    """A tokenizer-only cell's reconstruction: exact match at level 1 and at full depth (exact frames for a video
    run, with pixel accuracy and the objects drawn right), code bits and utilization (text)."""
    from hiertok.evaluate import evaluate_run
    from hiertok.video_eval import VideoTokenizerEval

    tok = evaluate_run(str(tok_dir), budget.data, budget.eval_docs)
    if isinstance(tok, VideoTokenizerEval):
        full = max(tok.by_level)
        return {
            "exact_match_k1": tok.by_level[1]["exact_frame"],
            "exact_match_full": tok.by_level[full]["exact_frame"],
            "pixel_accuracy_full": tok.by_level[full]["pixel_accuracy"],
            "objects_right_full": tok.by_level[full]["objects_right"],
            "exact_match_by_prefix": json.dumps({k: v["exact_frame"] for k, v in tok.by_level.items()}),
        }
    levels = len(tok.utilization_by_level)
    return {
        "code_bits": tok.bits_per_idea_by_prefix[str(levels)],
        "exact_match_k1": tok.exact_match_by_prefix["1"],
        "exact_match_full": tok.exact_match_by_prefix[str(levels)],
        "exact_match_by_prefix": json.dumps(tok.exact_match_by_prefix),
        "token_accuracy_full": tok.token_accuracy_by_prefix[str(levels)],
        "utilization_mean": sum(tok.utilization_by_level.values()) / levels,
        "utilization_by_level": json.dumps(tok.utilization_by_level),
    }


def _check_settings(cell_dir: Path, settings: dict) -> None:
    """Record a cell's settings on first use; raise UserError if a later run asks for other ones."""
    path = cell_dir / SETTINGS_FILE
    if path.exists():
        if json.loads(path.read_text()) != json.loads(json.dumps(settings)):
            raise UserError(f"{cell_dir} was run with other settings: choose another --runs directory")
        return
    if PartialState().is_main_process:
        cell_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(settings, indent=2) + "\n")
    PartialState().wait_for_everyone()


def run_cell(cell: Cell, root: Path, budget: Budget) -> dict:
    """Train (or resume, or skip) and evaluate one cell; its row is cached in root/name/result.json.

    Returns:
        The row: the cell's name and labels, its metrics, training and evaluation seconds.
    """
    cell_dir = root / cell.name
    cached = cell_dir / RESULT_FILE
    tok_dir, plan_dir = cell_dir / "tokenizer", cell_dir / "planner"
    tok_over = _budget_overrides(
        budget.data, budget.tokenizer_steps, [*budget.tokenizer_overrides, *cell.tokenizer_overrides]
    )
    plan_over = _budget_overrides(
        None, budget.planner_steps, [f"tokenizer={tok_dir}", *budget.planner_overrides, *cell.planner_overrides]
    )
    settings = {"budget": asdict(budget), "tokenizer": tok_over, "planner": plan_over}
    for key in ("tokenizer_config", "planner_config"):  # the YAML's text: a moved checkout is the same cell
        path = settings["budget"][key]
        if path and not Path(path).is_file():
            raise UserError(f"config file not found: {path}")
        settings["budget"][key] = Path(path).read_text() if path else None
    _check_settings(cell_dir, settings)  # a finished or half-done cell must not be reused under other settings
    if cached.exists():  # the budget verdict is read again from the run's log: a rule changed later applies
        return {**json.loads(cached.read_text()), **trained_rule(tok_dir)}
    state = PartialState()
    train_stage("tokenizer", budget.tokenizer_config, tok_dir, tok_over)
    if budget.planner:
        train_stage("planner", budget.planner_config, plan_dir, plan_over)
    row: dict = {"cell": cell.name, **cell.labels}
    if state.is_main_process:
        t0 = time.perf_counter()
        row.update(evaluate_cell(tok_dir, plan_dir, budget) if budget.planner else evaluate_tokenizer(tok_dir, budget))
        row["tokenizer_seconds"] = train_seconds(tok_dir)
        row["planner_seconds"] = train_seconds(plan_dir) if budget.planner else None
        row["eval_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(cached, json.dumps(row, indent=2) + "\n")
    state.wait_for_everyone()
    return {**json.loads(cached.read_text()), **trained_rule(tok_dir)}


def run_grid(cells: list[Cell], root: Path, budget: Budget) -> list[dict]:
    """Run every cell in order (one at a time: the cells share the machine). A failing cell is reported and
    left out of the rows; rerunning the grid retries it."""
    if len({c.name for c in cells}) != len(cells):
        raise UserError("cell names must be unique")
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, cell in enumerate(cells, 1):
        print(f"[{i}/{len(cells)}] {cell.name}", flush=True)
        try:
            rows.append(run_cell(cell, root, budget))
        except RuntimeError as e:
            print(f"  skipped: {e}", flush=True)
    return rows


def write_table(
    rows: list[dict], columns: list[str], csv_path: Path, md_path: Path, title: str, note: str = ""
) -> None:
    """All columns of every row to CSV; the chosen `columns` as a markdown table (floats to 3 places, as "mean ±
    sd" where the row has the column's `_sd`: `harness.seeds.aggregate`), `note` under the title."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)

    def fmt(v) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    def cell(row: dict, c: str) -> str:
        sd = row.get(f"{c}_sd")
        return fmt(row.get(c)) if sd is None or row.get(c) is None else f"{fmt(row[c])} ± {fmt(sd)}"

    lines = [f"# {title}", "", *([note, ""] if note else [])]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    md_path.write_text("\n".join(lines) + "\n")


def write_rows(rows: list[dict], out: Path, title: str, json_only: tuple[str, ...] = ()) -> None:
    """A script's rows to OUT/results.json (every field), results.csv and results.md (`write_table`; the fields in
    `json_only`, such as per-step curves, left out of the table), and the table printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    columns = [c for c in dict.fromkeys(k for r in rows for k in r) if c not in json_only]
    write_table(rows, columns, out / "results.csv", out / "results.md", title)
    print((out / "results.md").read_text())
