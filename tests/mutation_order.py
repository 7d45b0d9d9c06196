"""Test prioritisation for mutation runs (experiments/mutation.py): the test most likely to kill a mutant runs first.

mutmut runs a mutant's covering tests with `-x`, in collection order, so a killed mutant costs every test before the
first that fails. Mutation tools order tests to make that first failure come early (PIT runs the fastest covering
test first); mutmut 3.8 does not, so this plugin does, in the mutant's pytest session only:

1. tests that killed earlier mutants of the same function, most kills first (a kill log in the run cache);
2. then the fastest first (mutmut's recorded call durations, `mutmut-stats.json`).

A survivor still runs every covering test, so the order changes how long a run takes, never its verdicts. Outside a
mutation run (no MUTANT_UNDER_TEST, or no HIERTOK_TEST_RUN_CACHE) nothing is reordered.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from .cached_runs import CACHE_ENV, MUTANT_SUFFIX, NO_MUTANT

KILLS = "kills.jsonl"  # one {"function": ..., "test": ...} line per killing test, in the run cache
STATS = Path("mutmut-stats.json")  # mutmut runs the tests from its mutants/ directory, where it writes this


def _function() -> str | None:
    """The function of the mutant under test (module.x_function), or None outside a mutant's session."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if mutant in NO_MUTANT or not os.environ.get(CACHE_ENV):
        return None
    return MUTANT_SUFFIX.sub("", mutant)


def _kills(function: str) -> Counter:
    """How many earlier mutants of `function` each test killed."""
    log = Path(os.environ[CACHE_ENV]) / KILLS
    if not log.exists():
        return Counter()
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.strip())
    return Counter(r["test"] for r in lines if r["function"] == function)


def _durations() -> dict[str, float]:
    return json.loads(STATS.read_text()).get("duration_by_test", {}) if STATS.exists() else {}


def prioritise(items: list) -> None:
    """Reorder a mutant session's collected items in place (see the module docstring)."""
    function = _function()
    if function is None:
        return
    kills, durations = _kills(function), _durations()
    items.sort(key=lambda item: (-kills[item.nodeid], durations.get(item.nodeid, float("inf"))))


def record_kill(nodeid: str) -> None:
    """Log that test `nodeid` failed under the current mutant (an append of one short line: atomic on POSIX)."""
    function = _function()
    if function is None:
        return
    with open(Path(os.environ[CACHE_ENV]) / KILLS, "a") as log:
        log.write(json.dumps({"function": function, "test": nodeid}) + "\n")
