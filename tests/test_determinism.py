"""The same seed and data give the same codes and the same generations, across loads of a run.

(Two trainings with the same seed ending in identical weights is checked by tests/test_resume.py, which
compares a run trained in two pieces, and one killed and resumed, with one trained straight through.)
"""

from hiertok.pipeline import Pipeline
from hiertok.tokenizer import IdeaTokenizer

TEXT = ["Mia found a red kite. She gave it to Leo. They played all day.", "Tom woke up early."]


def test_codes_and_decodings_are_identical_across_loads(toy_run):
    a, b = IdeaTokenizer.from_pretrained(toy_run), IdeaTokenizer.from_pretrained(toy_run)
    ca, cb = a.encode(TEXT), b.encode(TEXT)
    assert (ca.ids == cb.ids).all() and (ca.mask == cb.mask).all()
    assert a.decode(ca) == b.decode(cb) == a.decode(a.encode(TEXT))


def test_generations_are_identical_across_loads(toy_planner_run):
    runs = [Pipeline.from_pretrained(toy_planner_run) for _ in range(2)]
    for kw in ({"beams": 1}, {"beams": 3}, {"sample": True, "num_samples": 2, "seed": 5}):
        a, b = (p.generate("Tom found a key.", sentences=3, **kw).to_dict() for p in runs)
        assert a == b, kw
