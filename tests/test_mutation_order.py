"""The mutation run's test prioritisation: the test that killed a function's mutants runs first, then the fastest."""

import json
from dataclasses import dataclass

from .mutation_order import KILLS, STATS, prioritise, record_kill


@dataclass
class Item:
    nodeid: str


def _items():
    return [Item("t.py::slow"), Item("t.py::fast"), Item("t.py::killer"), Item("t.py::unknown")]


def test_killers_of_the_function_first_then_the_fastest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIERTOK_TEST_RUN_CACHE", str(tmp_path))
    STATS.write_text(json.dumps({"duration_by_test": {"t.py::slow": 5.0, "t.py::fast": 0.1, "t.py::killer": 9.0}}))
    monkeypatch.setenv("MUTANT_UNDER_TEST", "pkg.mod.x_f__mutmut_1")
    record_kill("t.py::killer")
    monkeypatch.setenv("MUTANT_UNDER_TEST", "pkg.mod.x_other__mutmut_1")  # another function's kill: not counted
    record_kill("t.py::slow")
    record_kill("t.py::slow")
    lines = [json.loads(line) for line in (tmp_path / KILLS).read_text().splitlines()]
    assert lines[0] == {"function": "pkg.mod.x_f", "test": "t.py::killer"}

    monkeypatch.setenv("MUTANT_UNDER_TEST", "pkg.mod.x_f__mutmut_7")
    items = _items()
    prioritise(items)
    assert [i.nodeid for i in items] == ["t.py::killer", "t.py::fast", "t.py::slow", "t.py::unknown"]

    monkeypatch.setenv("MUTANT_UNDER_TEST", "pkg.mod.x_other__mutmut_2")
    prioritise(items)
    assert [i.nodeid for i in items] == ["t.py::slow", "t.py::fast", "t.py::killer", "t.py::unknown"]


def test_nothing_is_reordered_or_logged_outside_a_mutants_session(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    STATS.write_text(json.dumps({"duration_by_test": {"t.py::slow": 5.0, "t.py::fast": 0.1}}))
    monkeypatch.setenv("HIERTOK_TEST_RUN_CACHE", str(tmp_path))
    for mutant in ("", "stats"):  # an ordinary run, mutmut's clean stats run
        monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
        items = _items()
        prioritise(items)
        record_kill("t.py::slow")
        assert [i.nodeid for i in items] == [i.nodeid for i in _items()]
    monkeypatch.setenv("MUTANT_UNDER_TEST", "pkg.mod.x_f__mutmut_1")
    monkeypatch.delenv("HIERTOK_TEST_RUN_CACHE")  # no run cache: no place for the kill log
    items = _items()
    prioritise(items)
    record_kill("t.py::slow")
    assert [i.nodeid for i in items] == [i.nodeid for i in _items()]
    assert not (tmp_path / KILLS).exists()
