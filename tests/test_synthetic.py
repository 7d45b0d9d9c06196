"""Tests for the synthetic story-world corpus (hiertok.data.synthetic)."""

from __future__ import annotations

import re
from collections import deque

import pytest

from hiertok.data.synthetic import MAX_LEN, MIN_LEN, TEMPLATES, Story, StoryWorld, generate_stories

from .timing import growth

SENTENCE_RE = re.compile(r"^[A-Z][^.!?]*[.!?]$")


@pytest.fixture(scope="module")
def world() -> StoryWorld:
    return StoryWorld()


@pytest.fixture(scope="module")
def corpus(world: StoryWorld) -> list[Story]:
    return world.generate(10_000, seed=0)


def test_grammar_shape(world: StoryWorld) -> None:
    assert len(world.event_types) >= 20
    assert world.event_types == sorted(world.event_types)
    assert set(world.transitions) == set(world.event_types)
    assert set(world.start_events) <= set(world.event_types)
    assert set(world.end_events) <= set(world.event_types)
    assert not set(world.start_events) & set(world.end_events)
    for event, nxt in world.transitions.items():
        assert set(nxt) <= set(world.event_types), event
        if event in world.end_events:
            assert nxt == [], f"end event {event} must have no successors"
        else:
            assert 1 <= len(nxt) <= 4, event
        assert len(TEMPLATES[event]) >= 3, event


def test_every_event_reaches_an_end_and_is_reachable(world: StoryWorld) -> None:
    # Forward closure from each event must hit an end event, so generation always terminates.
    for event in world.event_types:
        seen, queue = {event}, deque([event])
        while queue:
            for nxt in world.transitions[queue.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        assert seen & set(world.end_events), f"{event} cannot reach an end event"
    # And every event is used: reachable from some start event.
    seen, queue = set(world.start_events), deque(world.start_events)
    while queue:
        for nxt in world.transitions[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    assert seen == set(world.event_types)


def test_generated_stories_are_valid(world: StoryWorld, corpus: list[Story]) -> None:
    assert len(corpus) == 10_000
    for story in corpus:
        assert world.is_valid(story.events), story.events
        assert len(story.sentences) == len(story.events)
        assert MIN_LEN <= len(story.sentences) <= MAX_LEN
        assert story.final_event == story.events[-1] in world.end_events
    # All event types actually occur in a large corpus.
    assert {e for s in corpus for e in s.events} == set(world.event_types)


def test_is_valid_rejects_bad_sequences(world: StoryWorld) -> None:
    good = list(generate_stories(1, seed=3)[0].events)
    assert world.is_valid(good)
    assert world.is_valid(tuple(good))
    assert not world.is_valid([])
    not_start = next(e for e in world.event_types if e not in world.start_events)
    assert not world.is_valid([not_start, *good[1:]])
    assert not world.is_valid(good[:-1])  # does not end at an end event
    assert not world.is_valid([*good, good[-1]])  # end events have no successors
    start = world.start_events[0]
    bad_next = next(e for e in world.event_types if e not in world.transitions[start])
    end = world.end_events[0]
    assert not world.is_valid([start, bad_next, end])
    assert not world.is_valid([start, "no_such_event", end])
    assert not world.is_valid([end])


def test_determinism_and_seed_sensitivity(world: StoryWorld) -> None:
    a = world.generate(200, seed=7)
    assert a == world.generate(200, seed=7)
    assert a == StoryWorld().generate(200, seed=7)
    assert a == generate_stories(200, seed=7)
    assert a != world.generate(200, seed=8)
    assert [s.text for s in a] != [s.text for s in world.generate(200, seed=8)]
    assert world.generate(0) == []
    assert world.generate(50, seed=7) == a[:50]  # stories are drawn sequentially from one stream


def test_negative_n_raises(world: StoryWorld) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        world.generate(-1)


def test_diversity(world: StoryWorld, corpus: list[Story]) -> None:
    sentences = [s for story in corpus for s in story.sentences]
    assert len(set(sentences)) >= 10_000
    words = set(re.findall(r"[a-z]+", " ".join(sentences).lower()))
    assert len(words) >= 300
    assert words <= world.vocabulary()
    assert len({s.text for s in corpus}) == len(corpus)


def test_generation_time_is_linear_in_the_stories(world: StoryWorld) -> None:
    ratio = growth(lambda n: world.generate(n, seed=1), 1_000, 4_000)
    assert ratio < 8, f"4x the stories took {ratio:.1f}x the time"


def test_sentence_surface_form(corpus: list[Story]) -> None:
    for story in corpus[:3000]:
        assert story.text == " ".join(story.sentences)
        for s in story.sentences:
            assert SENTENCE_RE.match(s), s
            assert 6 <= len(s.split()) <= 16, s
            assert not re.search(r"[\d\"\n]|\.\.|  ", s), s


def test_text_splits_back_into_sentences(corpus: list[Story]) -> None:
    for story in corpus[:3000]:
        assert tuple(re.split(r"(?<=[.!?])\s+", story.text)) == story.sentences
    pysbd = pytest.importorskip("pysbd")
    seg = pysbd.Segmenter(language="en", clean=False)
    for story in corpus[:100]:
        assert tuple(s.strip() for s in seg.segment(story.text)) == story.sentences


def test_classify_recovers_true_event(world: StoryWorld, corpus: list[Story]) -> None:
    for story in corpus[:2000]:
        for sentence, event in zip(story.sentences, story.events, strict=True):
            assert world.classify(sentence) == event, sentence
    s, e = corpus[0].sentences[0], corpus[0].events[0]
    assert world.classify(f"  {s} \n") == e


def test_templates_are_unambiguous(world: StoryWorld, corpus: list[Story]) -> None:
    # Each generated sentence must match exactly one event's templates, not just the first tried.
    patterns = {e: re.compile(p) for e, p in world._event_patterns.items()}
    for story in corpus[:500]:
        for sentence in story.sentences:
            hits = [e for e, p in patterns.items() if p.fullmatch(sentence)]
            assert len(hits) == 1, (sentence, hits)


def test_classify_rejects_garbage(world: StoryWorld, corpus: list[Story]) -> None:
    garbage = "The moon is made of cheese."
    patterns = [re.compile(p) for p in world._event_patterns.values()]
    assert not any(p.fullmatch(garbage) for p in patterns)
    assert world.classify(garbage) is None
    s = corpus[0].sentences[0]
    assert world.classify("") is None
    assert world.classify(s[:-1]) is None  # missing final punctuation
    assert world.classify(s[:-1] + " indeed.") is None  # trailing extra word
    assert world.classify(s.replace(s.split()[0], "Zorblax", 1)) is None  # unknown first word / name
