"""Does a story keep its cast? Parse synthetic-world sentences back into their template slots.

A story world's templates fill persistent slots (hero, friend, their kinds and traits, the place, the
treasured object and its colour) from one story state, so a story written by the world never changes them,
except the place, which a `go_to_place` event moves. A generated story keeps its cast when every such slot
keeps the value it first had and the place changes only at a `go_to_place` event. The world also draws the
hero and the friend as two different names; `friend_is_hero` finds stories that break that.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from hiertok.data.synthetic import LEXICON, MOVES, SLOT_LEXICON, STATE_SLOTS, TEMPLATES, StoryWorld


def _template_regex(template: str) -> re.Pattern:
    """A template as a regex: persistent slots are named groups (a repeated slot must repeat its value),
    the other slots match any word of their list."""
    parts, seen = [], set()
    for literal, slot, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if not slot:
            continue
        words = sorted(LEXICON[SLOT_LEXICON.get(slot, slot)], key=len, reverse=True)
        alternatives = "|".join(re.escape(w) for w in words)
        if slot not in STATE_SLOTS:
            parts.append(f"(?:{alternatives})")
        elif slot in seen:
            parts.append(f"(?P={slot})")
        else:
            parts.append(f"(?P<{slot}>{alternatives})")
            seen.add(slot)
    return re.compile("".join(parts))


class CastChecker:
    """Checks generated stories against the world's grammar and its persistent slots."""

    def __init__(self, world: StoryWorld | None = None):
        self.world = world or StoryWorld()
        self.templates = {event: [_template_regex(t) for t in TEMPLATES[event]] for event in TEMPLATES}

    def parse(self, sentence: str) -> tuple[str, dict[str, str]] | None:
        """The event of a sentence and the values of its persistent slots; None if no template matches it."""
        sentence = sentence.strip()
        event = self.world.classify(sentence)
        if event is None:
            return None
        for regex in self.templates[event]:
            m = regex.fullmatch(sentence)
            if m:
                return event, m.groupdict()
        return None  # the event's pattern matched, but a repeated slot changed its value within the sentence

    def cast_break(self, sentences: Sequence[str]) -> str | None:
        """Where a story first loses its cast: "unparsed" (a sentence no template matches) or "SLOT@EVENT" (the
        first sentence, of that event, that gives a persistent slot another value); None if it keeps its cast."""
        state: dict[str, str] = {}
        for sentence in sentences:
            parsed = self.parse(sentence)
            if parsed is None:
                return "unparsed"
            event, slots = parsed
            for slot, value in slots.items():
                if slot == "place" and event in MOVES:
                    state[slot] = value
                elif state.setdefault(slot, value) != value:
                    return f"{slot}@{event}"
        return None

    def count_breaks(self, stories: Sequence[Sequence[str]]) -> dict[str, int]:
        """How many of the stories that are not story-valid break first where: "grammar" (checked first), then
        `cast_break`'s answer; most frequent first."""
        found = Counter("grammar" if not self.grammar_valid(s) else self.cast_break(s) for s in stories)
        del found[None]  # the stories that keep their cast
        return dict(found.most_common())

    def keeps_cast(self, sentences: Sequence[str]) -> bool:
        """True if every sentence parses and every persistent slot keeps its first value (the place may change
        at a `go_to_place` event only)."""
        return self.cast_break(sentences) is None

    def friend_is_hero(self, sentences: Sequence[str]) -> bool:
        """True if some parsed sentence names the hero's friend with the hero's own name."""
        names: dict[str, set[str]] = {"hero": set(), "friend": set()}
        for sentence in sentences:
            parsed = self.parse(sentence)
            for slot in names if parsed else ():
                if slot in parsed[1]:
                    names[slot].add(parsed[1][slot])
        return bool(names["hero"] & names["friend"])

    def grammar_valid(self, sentences: Sequence[str]) -> bool:
        """The story's events follow the world's grammar from a start event to an end event."""
        return self.world.is_valid([self.world.classify(s) for s in sentences])

    def story_valid(self, sentences: Sequence[str]) -> bool:
        """Grammar-valid and keeps its cast."""
        return self.grammar_valid(sentences) and self.keeps_cast(sentences)
