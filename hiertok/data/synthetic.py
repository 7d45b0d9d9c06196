"""Seeded synthetic "story world" corpus: the project's built-in default corpus.

Each story is a walk through a small transition grammar over ~30 event types
(wake_up -> go_to_place -> find_object -> ...). Every event is rendered by one of
several sentence templates whose slots are filled from the story's persistent cast
(hero, friend, current place, treasured object) and from per-sentence word lists.
The ground-truth event of every sentence is kept, and :meth:`StoryWorld.classify`
maps a sentence back to its event, so generated stories can later be checked
against the grammar.

Sentences are deliberately splitter-friendly: no abbreviations, no quotes, no
digits and no interior ``.``, ``!`` or ``?``, so ``story.text`` splits back into
exactly ``story.sentences``.
"""

from __future__ import annotations

import random
import re
import string
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from hiertok.errors import UserError

MIN_LEN = 4  # sentences per story (inclusive bounds)
MAX_LEN = 10

# Word lists, "key: words" (a key may repeat to continue; comma-separated when items have spaces).
# Nouns that follow "a" start with a consonant so articles stay correct.
_LEX_SPEC = """
name: Mia Leo Ava Sam Zoe Max Lily Ben Nora Finn Ruby Theo Ella Jack Ivy Owen Rosa Hugo Lucy Omar
name: Pip Tilly Milo Nina Otto Luna Kai Maya Rex Juno Gus Wren Felix Hazel Arlo Greta Bo Clara Dev Esme
kind: girl boy rabbit fox bear cat dog mouse duck hedgehog squirrel turtle badger pony frog goat
trait: brave curious little shy clever kind funny gentle sleepy cheerful busy quiet tiny happy small
trait: bold friendly careful lively young
place: park forest beach river meadow garden market library hill lake farm village bakery pond
place: orchard playground barn cave harbor castle zoo school valley field museum mountain island
obj: ball kite hat key book lantern shell scarf map compass whistle marble feather ribbon drum cup
obj: blanket spoon bell basket box coin boat balloon crayon flute teapot clock
color: red blue green yellow purple pink silver golden brown white black
adv: slowly quickly happily quietly carefully proudly gently eagerly lazily softly
spot: rock, log, bush, bench, hedge, pile of leaves, tree stump, flower pot, crate, big stone
food: apples cookies pancakes soup berries sandwiches carrots cheese honey bread muffins pie noodles
food: plums grapes porridge cake pears rice biscuits
game: hide and seek, tag, catch, hopscotch, leapfrog, marbles, chess, cards, tug of war, jump rope,
game: dominoes, checkers
weather: rain snow hail drizzle pour thunder
animal: deer heron snake beetle wolf butterfly crab bat lizard moose spider peacock goose toad swan
topic: the stars, the sea, rainbows, dragons, pirates, snowflakes, busy bees, sleepy turtles,
topic: tall ships, warm summer nights, falling leaves
build: a sandcastle, a fort, a tower, a raft, a snowman, a treehouse, a bird house, a little cart,
build: a swing, a secret den
tale: a brave knight, a friendly giant, a sleepy dragon, a lost princess, a talking tree,
tale: a flying pig, a tiny robot, a magic door, a hungry monster, a clever witch
water: stream river creek brook canal gorge
tree: oak pine maple birch willow cherry apple elm
"""


def _parse_lexicon(spec: str) -> dict[str, list[str]]:
    """Parse ``_LEX_SPEC`` into ``{key: [item, ...]}`` (items may contain spaces)."""
    lexicon: dict[str, list[str]] = {}
    for line in spec.strip().splitlines():
        key, _, words = line.partition(":")
        items = words.split(",") if "," in words else words.split()
        lexicon.setdefault(key, []).extend(w.strip() for w in items if w.strip())
    return lexicon


LEXICON = _parse_lexicon(_LEX_SPEC)

# Slot name -> word list; slots not listed here use the list of the same name.
SLOT_LEXICON = {"hero": "name", "friend": "name", "fkind": "kind", "ftrait": "trait"}
# Slots fixed per story (the cast and setting); all other slots are drawn per sentence.
STATE_SLOTS = frozenset({"hero", "friend", "kind", "fkind", "trait", "ftrait", "place", "obj", "color"})

START_EVENTS = ["introduce", "plan_day", "wake_up"]
END_EVENTS = ["fall_asleep", "live_happily", "say_goodbye"]

# The grammar and its surface forms, one block per event: "event -> allowed next events"
# followed by that event's sentence templates (indented). End events list no successors.
_SPEC = """
wake_up -> eat go_to_place weather_change sing_song
    {hero} woke up early and stretched {adv} in the morning sun.
    One bright morning, {hero} the {kind} opened both eyes and yawned.
    The sun came up and {hero} jumped out of bed {adv}.
    Early one morning, {hero} woke up to the sound of singing birds.
introduce -> go_to_place find_object meet_friend climb_tree
    Once upon a time there was a {trait} {kind} named {hero}.
    Long ago, a {trait} {kind} called {hero} lived near the {place}.
    There once lived a {trait} {kind} whose name was {hero}.
plan_day -> go_to_place meet_friend draw_picture
    {hero} the {kind} wanted to have a big adventure today.
    Today {hero} decided to do something new and exciting.
    {hero} made a plan for the day and packed a {color} {obj}.
    {hero} looked out the window and dreamed of a great adventure.
go_to_place -> find_object meet_friend see_animal cross_bridge
    {hero} walked {adv} all the way to the {place}.
    After a while, {hero} set off for the {place}.
    Then {hero} skipped down the road to the {place}.
    {hero} took the long path that led to the {place}.
find_object -> lose_object give_object play_game go_to_place
    {hero} found a {color} {obj} under a {spot}.
    Near the {place}, {hero} spotted a shiny {color} {obj}.
    Something was hiding in the grass, and it was a {color} {obj}!
    {hero} picked up a {color} {obj} that someone had left behind.
lose_object -> search_object feel_sad
    Oh no, {hero} could not find the {obj} anywhere!
    The {color} {obj} slipped away and was lost in the tall grass.
    {hero} dropped the {obj} somewhere near the {place}.
    When {hero} looked down, the {obj} was gone.
search_object -> get_scared see_animal find_object
    {hero} searched under every {spot} for the missing {obj}.
    {hero} looked high and low for the {color} {obj}.
    Where could the {obj} be, wondered {hero}?
    {hero} and {friend} hunted all over the {place} for the {obj}.
meet_friend -> play_game share_food tell_story have_argument
    At the {place}, {hero} met an old friend named {friend}.
    {hero} bumped into {friend} the {fkind} near the {place}.
    A {ftrait} {fkind} named {friend} came over to say hello.
    {friend} the {fkind} waved and ran over to {hero}.
give_object -> feel_happy say_goodbye go_home
    {hero} gave the {color} {obj} to {friend} as a gift.
    {friend} smiled when {hero} handed over the {obj}.
    {hero} decided that {friend} should keep the {obj}.
eat -> go_to_place meet_friend draw_picture
    {hero} sat down and ate some {food}.
    For a snack, {hero} had warm {food} and a cup of milk.
    {hero} was hungry and ate a big bowl of {food}.
    Nothing tasted better to {hero} than fresh {food}.
play_game -> feel_happy have_argument get_hurt weather_change
    {hero} and {friend} played {game} for a long time.
    Everyone at the {place} joined in a game of {game}.
    {friend} taught {hero} how to play {game}.
    {hero} won the game of {game} and cheered loudly.
weather_change -> get_scared go_home build_something sing_song
    Suddenly the sky turned gray and it began to {weather}.
    Dark clouds rolled over the {place}, and soon it started to {weather}.
    The wind changed, and before long it began to {weather}.
    Without warning, it started to {weather} all over the {place}.
get_scared -> go_home sing_song help_friend
    {hero} heard a strange noise and felt very scared.
    A loud crash made {hero} jump with fright.
    {hero} saw a dark shadow and hid behind a {spot}.
    Suddenly {hero} shivered, because something was moving in the dark.
help_friend -> feel_happy give_object share_food
    {hero} helped {friend} carry a heavy sack across the {place}.
    When {friend} got stuck, {hero} came to help right away.
    {hero} held out a hand and pulled {friend} to safety.
    {friend} needed help, so {hero} lent a hand.
share_food -> tell_story play_game say_goodbye
    {hero} shared some {food} with {friend}.
    {hero} and {friend} sat together and shared a plate of {food}.
    {friend} was hungry, so {hero} offered some {food}.
build_something -> play_game weather_change feel_happy
    {hero} and {friend} built {build} near the {place}.
    With sticks and string, {hero} made {build}.
    It took all afternoon, but {hero} finished building {build}.
sing_song -> feel_happy meet_friend go_to_place fall_asleep
    {hero} sang a happy song about {topic}.
    To feel brave, {hero} hummed a tune about {topic}.
    {hero} and {friend} sang a silly song about {topic} together.
see_animal -> get_scared climb_tree draw_picture find_object
    {hero} spotted a {animal} hiding near the {place}.
    A {animal} walked right past {hero} and did not stop.
    {hero} pointed at a {animal} that was watching from the trees.
    {hero} had never seen a {animal} so close before.
get_hurt -> feel_sad go_home
    {hero} tripped over a {spot} and scraped a knee.
    {hero} slipped on a wet stone and hurt a paw.
    {hero} bumped into a {spot} and began to cry.
feel_sad -> sing_song share_food go_home
    {hero} felt sad and sat alone for a while.
    A big tear rolled down the cheek of {hero}.
    Nothing seemed fun anymore, and {hero} sighed {adv}.
feel_happy -> sing_song go_home live_happily say_goodbye
    {hero} felt so happy and danced all around the {place}.
    What a wonderful day, thought {hero} with a big smile!
    {hero} laughed and clapped with joy.
tell_story -> feel_happy fall_asleep get_scared
    {hero} told {friend} a story about {tale}.
    Sitting by the fire, {friend} told a tale about {tale}.
    {hero} whispered a story about {tale} to {friend}.
cross_bridge -> go_to_place see_animal lose_object
    {hero} crossed a wobbly bridge over the {water}.
    Step by step, {hero} walked across the old wooden bridge.
    {hero} held on tight while crossing the narrow bridge.
climb_tree -> see_animal get_hurt find_object
    {hero} climbed up a tall {tree} tree to look around.
    High in the branches of the {tree}, {hero} could see the whole {place}.
    {hero} scrambled up the {tree} tree as fast as possible.
have_argument -> feel_sad make_up
    {hero} and {friend} argued about who should keep the {obj}.
    {friend} said something unkind, and {hero} got angry.
    {hero} and {friend} could not agree on which game to play.
make_up -> play_game share_food live_happily
    {hero} said sorry, and {friend} gave a big hug.
    After a while, {hero} and {friend} became friends again.
    {friend} apologized, and {hero} forgave {friend} with a smile.
go_home -> eat fall_asleep tell_story
    As the sun set, {hero} walked back home.
    {hero} waved goodbye to the {place} and headed home.
    It was getting late, so {hero} hurried home {adv}.
draw_picture -> give_object feel_happy go_to_place
    {hero} drew a picture of a {animal} with {color} crayons.
    {hero} painted the {place} using bright {color} paint.
    With a pencil, {hero} sketched a {color} {obj}.
fall_asleep ->
    That night, {hero} fell fast asleep and dreamed of {topic}.
    {hero} curled up in bed and drifted off to sleep.
    Tired but happy, {hero} closed both eyes and fell asleep.
live_happily ->
    And from that day on, {hero} was the happiest {kind} in the land.
    {hero} and {friend} lived happily ever after.
    From then on, {hero} always remembered this special day.
say_goodbye ->
    {hero} hugged {friend} goodbye and promised to play again soon.
    {hero} and {friend} waved goodbye until next time.
    Before leaving, {hero} said goodbye to {friend} and the {place}.
"""


def _parse_spec(spec: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Parse the ``_SPEC`` block.

    Args:
        spec: Event headers ``name -> next ...`` each followed by indented templates.

    Returns:
        ``(transitions, templates)``, both keyed by event type in spec order.
    """
    transitions: dict[str, list[str]] = {}
    templates: dict[str, list[str]] = {}
    event = ""
    for line in spec.strip().splitlines():
        if line.startswith(" "):
            templates[event].append(line.strip())
        else:
            event, _, nxt = line.partition("->")
            event = event.strip()
            transitions[event], templates[event] = nxt.split(), []
    return transitions, templates


TRANSITIONS, TEMPLATES = _parse_spec(_SPEC)

# Events that move the story somewhere new (a fresh place is drawn before rendering).
MOVES = frozenset({"go_to_place"})


@dataclass(frozen=True)
class Story:
    """One generated story with its ground-truth event labels.

    Attributes:
        sentences: The story's sentences, in order.
        events: The event type that produced each sentence.
    """

    sentences: tuple[str, ...]
    events: tuple[str, ...]

    @property
    def text(self) -> str:
        """The whole story as one string (sentences joined by single spaces)."""
        return " ".join(self.sentences)

    @property
    def final_event(self) -> str:
        """The event type of the last sentence."""
        return self.events[-1]


def _parse(template: str) -> list[tuple[str, str | None]]:
    """Split a template into ``(literal, slot)`` pieces (slot is None for trailing text)."""
    return [(lit, field or None) for lit, field, _, _ in string.Formatter().parse(template)]


class StoryWorld:
    """The fixed story world: lexicon, event grammar, templates and the inverse classifier."""

    def __init__(self) -> None:
        """Build the grammar tables, pre-parse templates and compile the classifier regex."""
        self.event_types: list[str] = sorted(TEMPLATES)
        self.start_events: list[str] = list(START_EVENTS)
        self.end_events: list[str] = list(END_EVENTS)
        self.transitions: dict[str, list[str]] = {e: list(TRANSITIONS[e]) for e in self.event_types}
        self._end_set = frozenset(self.end_events)
        # Pre-parsed templates make generation a cheap join instead of str.format.
        self._parsed = {e: [_parse(t) for t in TEMPLATES[e]] for e in self.event_types}
        self._dist = self._distances_to_end()
        slot_re = {
            s: "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + ")"
            for s, words in ((s, LEXICON[SLOT_LEXICON.get(s, s)]) for s in self._slot_names())
        }
        # One sub-pattern per event; the event name is the named group, so m.lastgroup is the label.
        self._event_patterns: dict[str, str] = {
            e: "|".join(
                "".join(re.escape(lit) + (slot_re[f] if f else "") for lit, f in parsed) for parsed in self._parsed[e]
            )
            for e in self.event_types
        }
        self._regex = re.compile("|".join(f"(?P<{e}>{p})" for e, p in self._event_patterns.items()))

    def _slot_names(self) -> set[str]:
        """All slot names used by any template."""
        return {f for ps in self._parsed.values() for p in ps for _, f in p if f}

    def _distances_to_end(self) -> dict[str, int]:
        """Shortest number of transitions from each event to an end event (BFS on reversed edges).

        Returns:
            Mapping event -> distance; events that cannot reach an end event are absent.
        """
        preds: dict[str, list[str]] = {e: [] for e in self.event_types}
        for src, dsts in self.transitions.items():
            for d in dsts:
                preds[d].append(src)
        dist = {e: 0 for e in self.end_events}
        queue = deque(self.end_events)
        while queue:
            cur = queue.popleft()
            for p in preds[cur]:
                if p not in dist:
                    dist[p] = dist[cur] + 1
                    queue.append(p)
        return dist

    def is_valid(self, events: Sequence[str]) -> bool:
        """Check an event sequence against the grammar.

        Args:
            events: Event types, one per sentence.

        Returns:
            True iff the sequence is non-empty, starts at a start event, every step is an
            allowed transition, and it ends at an end event.
        """
        if not events or events[0] not in self.start_events or events[-1] not in self._end_set:
            return False
        return all(b in self.transitions.get(a, ()) for a, b in pairwise(events))

    def _next_event(self, rng: random.Random, cur: str, n: int, target: int) -> str:
        """Pick the event after ``cur`` given ``n`` sentences so far and a target length."""
        dist = self._dist
        # Never take a branch that could not finish within MAX_LEN; an optimal branch always
        # survives this filter because n + dist[cur] <= MAX_LEN is kept invariant.
        cands = [s for s in self.transitions[cur] if n + 1 + dist[s] <= MAX_LEN]
        if n + 1 < MIN_LEN:
            longer = [s for s in cands if s not in self._end_set]
            cands = longer or cands
        if n >= target:  # past the target length: only steps that move closer to an end
            cands = [s for s in cands if dist[s] < dist[cur]]
        return rng.choice(cands)

    def _story(self, rng: random.Random) -> Story:
        """Generate one story with ``rng``."""
        lex = LEXICON
        hero, friend = rng.sample(lex["name"], 2)
        state = {
            "hero": hero,
            "friend": friend,
            "kind": rng.choice(lex["kind"]),
            "fkind": rng.choice(lex["kind"]),
            "trait": rng.choice(lex["trait"]),
            "ftrait": rng.choice(lex["trait"]),
            "place": rng.choice(lex["place"]),
            "obj": rng.choice(lex["obj"]),
            "color": rng.choice(lex["color"]),
        }
        target = rng.randint(MIN_LEN, MAX_LEN)
        event = rng.choice(self.start_events)
        events, sentences = [], []
        while True:
            if event in MOVES:
                state["place"] = rng.choice(lex["place"])
            parts = []
            for lit, slot in rng.choice(self._parsed[event]):
                parts.append(lit)
                if slot:
                    parts.append(state[slot] if slot in STATE_SLOTS else rng.choice(lex[slot]))
            events.append(event)
            sentences.append("".join(parts))
            if event in self._end_set:
                return Story(tuple(sentences), tuple(events))
            event = self._next_event(rng, event, len(events), target)

    def generate(self, n: int, seed: int = 0) -> list[Story]:
        """Generate ``n`` stories deterministically from ``seed``.

        Args:
            n: Number of stories (>= 0).
            seed: Seed for ``random.Random``; the same seed always gives the same stories.

        Returns:
            List of ``n`` grammar-valid stories of MIN_LEN..MAX_LEN sentences.

        Raises:
            UserError: If ``n`` is negative.
        """
        if n < 0:
            raise UserError(f"number of stories must be >= 0, got {n}")
        rng = random.Random(seed)
        return [self._story(rng) for _ in range(n)]

    def classify(self, sentence: str) -> str | None:
        """Map a sentence back to the event type whose template produced it.

        Args:
            sentence: One sentence; surrounding whitespace is ignored.

        Returns:
            The event type, or None if the sentence matches no template exactly.
        """
        m = self._regex.fullmatch(sentence.strip())
        return m.lastgroup if m else None

    def vocabulary(self) -> set[str]:
        """All words the templates and lexicon can produce.

        Returns:
            Lowercased words with punctuation stripped.
        """
        text = " ".join(" ".join(TEMPLATES[e]) for e in self.event_types)
        text = re.sub(r"\{\w+\}", " ", text) + " " + " ".join(" ".join(ws) for ws in LEXICON.values())
        return set(re.findall(r"[a-z]+", text.lower()))


def generate_stories(n: int, seed: int = 0) -> list[Story]:
    """Convenience wrapper: ``StoryWorld().generate(n, seed)``.

    Args:
        n: Number of stories (>= 0).
        seed: Random seed.

    Returns:
        List of ``n`` stories.
    """
    return StoryWorld().generate(n, seed)
