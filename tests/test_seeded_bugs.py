"""Every seeded bug of experiments/seeded_bugs.py still plants: its text occurs exactly once in its file (a refactor
that moves the code must update the bug, not leave it planting nothing)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

from seeded_bugs import BUGS  # noqa: E402 - the experiments folder is not a package


@pytest.mark.parametrize("name", list(BUGS))
def test_a_seeded_bug_still_plants(name):
    bug = BUGS[name]
    assert (ROOT / bug.path).read_text(encoding="utf-8").count(bug.old) == 1, f"{name}: {bug.old!r}"
