"""Mutation testing of the functions that carry the project's claims, with mutmut, group by group.

Each group (codelength, search, the plan-faithful pick and expansion, checkpoints and resume, code prefixes and
decoding) is mutated in a scratch copy of the working tree (--work/<group>, kept so that a rerun resumes) and
checked by the fast tests that cover it: for each mutant, mutmut runs the tests that called the mutated
function. The toy runs the tests train are kept on disk (tests/cached_runs.py) and trained again whenever the
mutant is in a function that training them called, and a mutant's tests run in the order likeliest to kill it
first (tests/mutation_order.py: the tests that killed the function's earlier mutants, then the fastest).
Writes report.json and report.md to --out: per function killed, survived, timeout and no-test counts, and every
survivor, with its diff and, for the ones listed in EQUIVALENT, why it cannot change behaviour.

Score = killed / (killed + survived): timeouts count as killed, mutants that no test covers as survived,
the equivalents listed in experiments/mutation_equivalent.json in neither (those that only a GPU could tell
apart are also scored as survived, beside).

    python experiments/mutation.py                      # every group (about 70 minutes on 2 cores)
    python experiments/mutation.py --groups search      # one group
    python experiments/mutation.py --report-only        # rewrite the report from the scratch copies
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Group:
    files: list[str]  # the files mutmut mutates
    functions: list[str]  # mutant-name patterns of the functions under test (mutmut's mangled names)
    tests: list[str]  # the fast tests that cover them


# In the order they run (the most claimed first). Patterns name functions (mangled: x_f, xǁClassǁmethod).
GROUPS: dict[str, Group] = {
    "search": Group(  # beam search, greedy and sampling
        ["planner/search.py"],
        [
            f"planner.search.{f}__*"
            for f in ("x_search", "x_sample", "x_beam_search", "x__beam_step", "x__plan", "x__sampled_plan")
        ]
        + ["planner.search.xǁ_Rowsǁ*"],
        ["tests/test_planner_search.py", "tests/test_beam_search_edges.py", "tests/test_planner_pipeline.py"],
    ),
    "codelength": Group(
        ["hiertok/codelength.py", "planner/evaluate.py", "hiertok/evaluate.py"],
        [
            "hiertok.codelength.x_idea_bits__*",
            "hiertok.codelength.x_corpus_bits__*",
            "planner.evaluate.x_idea_code_nats__*",
            "hiertok.evaluate.x_idea_nats__*",
        ],
        # test_codes_carry_information reads idea_nats' token accuracy (teacher_forced)
        [
            "tests/test_codelength.py",
            "tests/test_baseline.py",
            "tests/test_story_context.py",
            "tests/test_codes_carry_information.py",
        ],
    ),
    "drafts": Group(  # later decoding passes from drafts
        ["decoder/drafts.py", "hiertok/story_decoding.py"],
        [
            "decoder.drafts.x_greedy_from_drafts__*",
            "decoder.drafts.x_lookup__*",
            "hiertok.story_decoding.x_redecode_greedy__*",
        ],
        ["tests/test_story_context.py"],
    ),
    "pick": Group(  # the plan-faithful pick and the pipeline's expansion
        ["hiertok/story_decoding.py", "hiertok/pipeline.py"],
        [
            "hiertok.story_decoding.x_decode_stories__*",
            "hiertok.story_decoding.x__decode_pass__*",
            "hiertok.pipeline.xǁPipelineǁexpand__*",
            "hiertok.pipeline.xǁPipelineǁ_decode__*",
        ],
        ["tests/test_planner_pipeline.py", "tests/test_story_context.py"],
    ),
    "prefixes": Group(  # code prefixes and decoding
        ["hiertok/codes.py", "hiertok/quantize.py", "hiertok/tokenizer.py"],
        [
            "hiertok.codes.xǁCodesǁprefix__*",
            "hiertok.quantize.xǁMultiLevelQuantizerǁdecode_indices__*",
            "hiertok.quantize.xǁMultiLevelQuantizerǁmask_levels__*",
            "hiertok.tokenizer.xǁIdeaTokenizerǁdecode*",
        ],
        [
            "tests/test_codes_carry_information.py",
            "tests/test_tokenizer.py",
            "tests/test_quantize.py",
            "tests/test_decoder.py",
            "tests/test_story_context.py",  # decoding with known ideas and several passes
            "tests/test_video_tokenizer.py",  # decode_frames
        ],
    ),
    "checkpoints": Group(  # checkpoint save and resume
        ["hiertok/training.py"],
        [
            "hiertok.training.x_save_weights__*",
            "hiertok.training.xǁCheckpointsǁ*",
            "hiertok.training.xǁMetricsLogǁtruncate_after__*",
        ],
        ["tests/test_checkpoints.py", "tests/test_resume.py", "tests/test_determinism.py", "tests/test_hostile.py"],
    ),
}

# Surviving mutants that cannot change behaviour: mutant name -> why, and the mutant's diff (left out of the
# score). Those whose reason starts with "CPU only" differ on a GPU alone; the report scores them both ways.
# mutmut numbers a function's mutants in order, so an edit to the function renumbers them: a listed mutant is
# recognised by its function and its diff, not by its number alone (a listed number whose diff changed is not
# taken for equivalent; the mutant with the listed diff is).
EQUIVALENT_FILE = ROOT / "experiments" / "mutation_equivalent.json"
EQUIVALENT: dict[str, dict[str, str]] = json.loads(EQUIVALENT_FILE.read_text()) if EQUIVALENT_FILE.exists() else {}
CPU_ONLY = "CPU only"


def equivalence(work: Path, mutant: str) -> str | None:
    """Why a surviving mutant cannot change behaviour, if it is listed (by its function and diff), else None."""
    function = mutant.partition("__mutmut_")[0]
    listed = [e for name, e in EQUIVALENT.items() if name.partition("__mutmut_")[0] == function]
    if not listed:
        return None
    shown = diff(work, mutant)
    return next((e["why"] for e in listed if e["diff"] == shown), None)


def prepare(work: Path, group: Group) -> None:
    """Copy the working tree (tracked and untracked, not ignored) into `work`, with the group's mutmut config."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    for rel in listed:
        src, dst = ROOT / rel, work / rel
        if src.is_file() and (not dst.exists() or dst.read_bytes() != src.read_bytes()):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    config = {
        "source_paths": ["hiertok", "planner", "decoder"],
        "only_mutate": group.files,
        "also_copy": ["configs", "experiments", "README.md"],
        "pytest_add_cli_args_test_selection": group.tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        "process_isolation": "forkserver",  # torch is not fork-safe once it has started its threads
        # a mutant's wall-clock limit is (its tests' call time + 40 s) x 3: room for a toy run trained afresh
        # (a fixture's setup is not in mutmut's estimate), so that only a real hang times out
        "timeout_multiplier": 3.0,
        "timeout_constant": 40.0,
    }
    lines = ["", "[tool.mutmut]", *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in config.items())]
    text = (ROOT / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(text + "\n".join(lines) + "\n")


def run(work: Path, group: Group, children: int, names: list[str] | None = None) -> int:
    """mutmut on the group's functions, or on the named mutants only."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",  # `children` tests at once on the machine's cores, one thread each
        "MKL_NUM_THREADS": "1",
        "HIERTOK_TEST_RUN_CACHE": str(work.parent / "run-cache"),
        "PYTHONPATH": str(work / "mutants"),  # tests that start `python -m hiertok ...` run the mutants too
    }
    cmd = ["mutmut", "run", "--max-children", str(children), *(names or group.functions)]
    code = subprocess.run(cmd, cwd=work, env=env).returncode
    if code != 0 and not (work / "mutants" / "mutmut-stats.json").exists():
        # mutmut 3.8.1 here: the run that generates the mutants fails its stats collection (pytest exits with a
        # usage error); the next run, on the generated mutants, collects them and goes on
        code = subprocess.run(cmd, cwd=work, env=env).returncode
    return code


def results(work: Path, group: Group) -> dict[str, int]:
    """mutant name -> mutmut exit code, for the group's functions."""
    out: dict[str, int] = {}
    for meta in (work / "mutants").rglob("*.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if any(fnmatch(name, p) for p in group.functions):
                out[name] = code
    return out


def status_of(work: Path, mutant: str, code: int | None) -> str:
    """killed, timeout, survived, no tests, equivalent (listed), or not run (an interrupted run)."""
    from mutmut.stats import status_by_exit_code  # mutmut's own reading of a worker's exit code

    why = equivalence(work, mutant) if code == 0 else None  # a listed mutant that a test now kills counts as killed
    if why is not None:
        return "cpu only" if why.startswith(CPU_ONLY) else "equivalent"
    status = status_by_exit_code[code]
    # a crash or a type-check failure is a failed check: the mutant is killed
    return {"not checked": "not run", "segfault": "killed", "caught by type check": "killed"}.get(status, status)


def function_of(mutant: str) -> str:
    return mutant.partition("__mutmut_")[0].replace("ǁ", ".").replace(".x_", ".").replace(".x.", ".")


@functools.cache  # a survivor's diff is asked for its status, its listed reason and the report: one mutmut call
def diff(work: Path, mutant: str) -> str:
    got = subprocess.run(["mutmut", "show", mutant], cwd=work, capture_output=True, text=True)
    return "\n".join(
        line for line in got.stdout.splitlines() if line.startswith(("+", "-")) and line[:3] not in ("+++", "---")
    )


def report(work_root: Path, groups: list[str], out: Path) -> float:
    per_function: dict[str, Counter] = defaultdict(Counter)
    survivors: list[dict] = []
    for name in groups:
        work = work_root / name
        for mutant, code in sorted(results(work, GROUPS[name]).items()):
            status = status_of(work, mutant, code)
            per_function[function_of(mutant)][status] += 1
            if status in ("survived", "no tests", "equivalent", "cpu only"):
                survivors.append(
                    {
                        "group": name,
                        "mutant": mutant,
                        "status": status,
                        "diff": diff(work, mutant),
                        "why": equivalence(work, mutant),
                    }
                )
    total = sum(per_function.values(), Counter())
    killed = total["killed"] + total["timeout"]
    scored = killed + total["survived"] + total["no tests"]
    score = killed / scored if scored else 0.0
    strict = killed / (scored + total["cpu only"]) if scored else 0.0  # a GPU would be needed to kill those
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "score": score,
        "score_counting_cpu_only_as_survived": strict,
        "counts": dict(total),
        "per_function": {k: dict(v) for k, v in per_function.items()},
        "survivors": survivors,
    }
    (out / "report.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    keys = ["killed", "timeout", "survived", "no tests", "equivalent", "cpu only", "not run"]
    md = [
        f"# Mutation testing (mutmut), groups: {', '.join(groups)}",
        "",
        f"Score = killed / (killed + survived) = **{killed} / {scored} = {score:.1%}** (timeouts count as "
        "killed, uncovered mutants as survived, listed equivalents in neither); "
        f"{strict:.1%} with the {total['cpu only']} mutants only a GPU tells apart counted as survived. "
        f"{total['not run']} mutants were not run (an interrupted run, or results mutmut dropped when the "
        "group's test files changed; `--only 'not run'` runs them).",
        "",
        "| function | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    md += [f"| `{f}` | " + " | ".join(str(c[k]) for k in keys) + " |" for f, c in sorted(per_function.items())]
    md += ["", "## Survivors", ""]
    for s in survivors:
        md += [
            f"- `{s['mutant']}` ({s['status']}){': ' + s['why'] if s['why'] else ''}",
            "  ```diff",
            *("  " + line for line in s["diff"].splitlines()),
            "  ```",
        ]
    (out / "report.md").write_text("\n".join(md) + "\n")
    return score


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", nargs="+", default=list(GROUPS), choices=list(GROUPS))
    p.add_argument("--work", default="/tmp/hiertok-mutation", help="scratch copies (kept: a rerun resumes)")
    p.add_argument("--out", default=str(ROOT / "experiments" / "results" / "mutation"))
    p.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--only",
        nargs="+",
        choices=["survived", "not run"],
        help="test again only the mutants in these states (after new tests, or an interrupted run)",
    )
    args = p.parse_args(argv)
    if shutil.which("mutmut") is None:
        print("mutation: error: mutmut is not installed (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    work_root = Path(args.work)
    for name in args.groups if not args.report_only else []:
        work = work_root / name
        work.mkdir(parents=True, exist_ok=True)
        prepare(work, GROUPS[name])
        names = None
        if args.only:
            names = [m for m, c in results(work, GROUPS[name]).items() if status_of(work, m, c) in args.only]
            if not names:
                continue
        code = run(work, GROUPS[name], args.children, names)
        print(f"mutation: {name}: mutmut exited {code}", flush=True)
    score = report(work_root, args.groups, Path(args.out))
    print(f"mutation: score {score:.1%} (report in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
