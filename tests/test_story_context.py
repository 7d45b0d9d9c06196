"""Expansion that sees the story: the cast checker, a lossless code that conditions only on the past,
decoding with a known prompt, and the flat LM generating from the same CLI."""

import dataclasses
import json

import pytest
import torch

from decoder.drafts import greedy_from_drafts, lookup
from decoder.generate import GenerationConfig
from hiertok import story_decoding
from hiertok.cli import main
from hiertok.codelength import idea_bits
from hiertok.codes import Codes
from hiertok.data.story_state import CastChecker
from hiertok.data.synthetic import StoryWorld
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer
from planner.search import Plan

from .cached_runs import cached_run
from .cli_errors import error_line
from .conftest import TOY

VALID = [
    "Once upon a time there was a brave fox named Mia.",
    "Mia walked slowly all the way to the park.",
    "At the park, Mia met an old friend named Leo.",
    "Mia and Leo played tag for a long time.",
    "Mia felt so happy and danced all around the park.",
    "Mia hugged Leo goodbye and promised to play again soon.",
]


def test_world_stories_keep_their_cast():
    check = CastChecker()
    assert all(check.story_valid(s.sentences) for s in StoryWorld().generate(300, seed=3))
    assert check.story_valid(VALID)


@pytest.mark.parametrize(
    "i, sentence, where",
    [
        (3, "Mia and Zoe played tag for a long time.", "friend@play_game"),  # the friend changes
        (5, "Ben hugged Leo goodbye and promised to play again soon.", "hero@say_goodbye"),  # the hero changes
        # ...or the place, at an event that cannot move it
        (4, "Mia felt so happy and danced all around the zoo.", "place@feel_happy"),
        (2, "At the beach, Mia met an old friend named Leo.", "place@meet_friend"),  # moved without go_to_place
        (5, "And from that day on, Mia was the happiest cat in the land.", "kind@live_happily"),  # the hero's kind
    ],
)
def test_a_changed_slot_breaks_the_cast_but_not_the_grammar(i, sentence, where):
    check = CastChecker()
    story = [*VALID[:i], sentence, *VALID[i + 1 :]]
    assert check.grammar_valid(story)
    assert not check.keeps_cast(story) and not check.story_valid(story)
    assert check.cast_break(story) == where and check.cast_break(VALID) is None


def test_cast_breaks_count_each_failing_story_once_by_its_first_break():
    check = CastChecker()
    hero = [*VALID[:5], "Ben hugged Leo goodbye and promised to play again soon."]
    both = [*VALID[:3], "Mia and Zoe played tag for a long time.", *hero[4:]]
    ungrammatical = VALID[1:]  # starts at go_to_place, not a start event
    stories = [VALID, hero, hero, both, ungrammatical]
    assert check.count_breaks(stories) == {"hero@say_goodbye": 2, "friend@play_game": 1, "grammar": 1}


def test_a_friend_named_like_the_hero_is_found():
    check = CastChecker()
    story = [*VALID[:2], "At the park, Mia met an old friend named Mia.", *VALID[3:]]
    assert check.friend_is_hero(story) and not check.friend_is_hero(VALID)


def test_the_place_may_move_at_go_to_place_and_sentences_must_parse():
    check = CastChecker()
    moved = [*VALID[:1], "Mia walked slowly all the way to the zoo.", "At the zoo, Mia met an old friend named Leo."]
    assert check.keeps_cast(moved)
    assert not check.keeps_cast([*VALID[:2], "Mia met a dragon."])  # no template: nothing to check it by
    assert check.parse("Leo apologized, and Mia forgave Zoe with a smile.") is None  # one slot, two values


def test_codelength_of_an_idea_depends_only_on_the_ideas_before_it(context_pipe):
    story = StoryWorld().generate(1, seed=5)[0].sentences
    changed = [*story[:-1], "Tired but happy, Rex closed both eyes and fell asleep."]
    first_changed = ["Long ago, a shy goat called Otto lived near the barn.", *story[1:]]
    a, b, c = (idea_bits(context_pipe, [" ".join(s)]) for s in (story, changed, first_changed))
    n = len(story)
    for bits in (a.code_bits, a.token_bits):
        assert len(bits) == n
    # Changing the last idea leaves every earlier idea's code and token bits as they were, and not its own.
    assert a.code_bits[:-1] == pytest.approx(b.code_bits[:-1], rel=1e-4, abs=1e-4)
    assert a.token_bits[:-1] == pytest.approx(b.token_bits[:-1], rel=1e-4, abs=1e-4)
    assert abs(a.token_bits[-1] - b.token_bits[-1]) > 1e-3
    # Changing the first idea changes what the decoder of the next one reads (its story context).
    assert abs(a.token_bits[1] - c.token_bits[1]) > 1e-3
    assert a.total == pytest.approx(a.code_bits.sum() + a.token_bits.sum() + a.end_bits)


def test_known_ideas_are_returned_as_given_and_read_by_text(context_pipe, monkeypatch):
    tok = context_pipe.tokenizer
    story = StoryWorld().generate(1, seed=8)[0]
    codes = tok.encode(story.text)
    prompt = tok.split(story.text)[:1]
    seen = []
    original = tok.model.decoder_condition

    def record(targets, context, codes_, tokens, mask, text_known=None, kept=None, **kw):
        seen.append((targets.clone(), (text_known & (context >= 0)).clone()))
        return original(targets, context, codes_, tokens, mask, text_known, kept, **kw)

    monkeypatch.setattr(tok.model, "decoder_condition", record)
    decoded, drafted = [], []  # the rows decoded token by token, and from drafts, per call
    original_generate, original_drafts = story_decoding.generate, story_decoding.greedy_from_drafts

    def count(decoder, cond, *args, **kw):
        decoded.append(len(cond))
        return original_generate(decoder, cond, *args, **kw)

    def count_drafts(decoder, cond, drafts, *args, **kw):
        assert all(drafts)  # a later pass starts every idea from the text it already has
        drafted.append(len(drafts))
        return original_drafts(decoder, cond, drafts, *args, **kw)

    monkeypatch.setattr(story_decoding, "generate", count)
    monkeypatch.setattr(story_decoding, "greedy_from_drafts", count_drafts)
    out, passes = tok.decode_stories(codes, known=[prompt], passes=0)
    assert out[0][0] == prompt[0] and len(out[0]) == len(story.sentences)
    targets, text_known = seen[0]
    assert 0 not in targets.tolist()  # the known idea is not decoded
    # Pass 1: idea 1 reads idea 0 (its nearest earlier idea) by text; idea 2 reads idea 0 only (idea 1 has no text).
    assert text_known[0].tolist() == [True, False] and text_known[1].tolist() == [False, True]
    # Pass 2 reads every earlier idea by its text; the passes stop once one changes nothing.
    assert seen[1][1][1].tolist() == [True, True] and 2 <= passes <= len(story.sentences)
    # Only the first pass decodes token by token; each later one decodes from drafts (the last, perhaps, only to
    # find that nothing changes), and only the ideas whose story changed.
    assert decoded == [len(story.sentences) - 1]
    # The idea after the prompt reads only the prompt, which never changes: no later pass checks it again.
    assert passes - 1 <= len(drafted) <= passes and max(drafted) <= len(story.sentences) - 2
    with pytest.raises(ValueError, match="known"):
        tok.decode_to_ids(codes, known=[prompt * (len(story.sentences) + 1)])


def test_later_passes_reach_what_decoding_one_idea_after_another_gives(context_pipe):
    tok = context_pipe.tokenizer
    story = StoryWorld().generate(1, seed=9)[0]
    codes = tok.encode(story.text)
    prompt = tok.split(story.text)[:1]
    jacobi, _ = tok.decode_stories(codes, known=[prompt], passes=0)
    # One idea after another: each decoded with every earlier idea's text known.
    known = list(prompt)
    for i in range(1, len(story.sentences)):
        part = Codes(codes.ids[:, : i + 1], codes.mask[:, : i + 1], codes.codebook_sizes)
        known.append(tok.decode_to_ids(part, known=[known])[0][i])
    assert jacobi[0] == known


def test_drafts_decode_to_the_greedy_text_and_a_converged_one_costs_one_forward_pass(context_pipe):
    tok = context_pipe.tokenizer
    stories = StoryWorld().generate(4, seed=10)
    codes = tok.encode([s.text for s in stories])
    gen = GenerationConfig(max_tokens=40)  # the toy budget, not context_pipe's short one: some texts end with EOS
    docs, _ = tok.decode_stories(codes, passes=0, generation=gen)  # decoded until nothing changes: fixed points
    texts = [ids for doc in docs for ids in doc]
    vectors = tok.model.quantizer.decode_indices(codes.ids[codes.mask])
    context = story_decoding.grid_previous(codes.mask, tok.model.decoder.cfg.context)
    story = story_decoding.StoryTexts(vectors, context, list(texts), torch.ones(len(texts), dtype=torch.bool))
    tokens, mask, has_text = story.batch(tok.bpe.pad_id, tok.device)
    rows = torch.arange(len(texts))
    cond = tok.model.decoder_condition(rows, context, vectors, tokens, mask, has_text[context.clamp(min=0)])
    decoder, pad = tok.model.decoder, tok.bpe.pad_id
    greedy = story_decoding.generate(decoder, cond, gen).tokens  # token by token, with the KV cache
    assert greedy == texts
    same, forwards = greedy_from_drafts(decoder, cond, texts, gen.max_tokens, pad)
    assert same == texts and forwards == 1
    # Drafts that are wrong in one token, cut short, empty, longer than the text, or another idea's text all decode
    # to the greedy text.
    shortest = min(range(len(texts)), key=lambda i: len(texts[i]))
    assert len(texts[shortest]) < gen.max_tokens  # it ends with EOS: inside a longer draft, greedy stops early
    # A token that occurs once in its text, replaced by one the text does not hold: the lookup cannot find the
    # corrected token in the draft, so the draft after the replaced token is checked next.
    row, mid = next(
        (r, i)
        for r in range(len(texts))
        if r != shortest
        for i in range(1, len(texts[r]))
        if texts[r].count(texts[r][i]) == 1
    )
    other = next(t for t in range(tok.bpe.vocab_size) if t not in texts[row])
    cut, empty, another = [r for r in range(len(texts)) if r not in (shortest, row)][:3]
    drafts = list(texts)
    drafts[row] = [*texts[row][:mid], other, *texts[row][mid + 1 :]]
    drafts[cut], drafts[empty], drafts[another] = texts[cut][:-2], [], texts[shortest]
    drafts[shortest] = [*texts[shortest], *texts[shortest][:3]]
    fixed, forwards = greedy_from_drafts(decoder, cond, drafts, gen.max_tokens, pad)
    # The empty draft gains one token per pass, then its EOS (none at the budget).
    assert fixed == greedy and forwards == min(len(texts[empty]) + 1, gen.max_tokens)
    # One corrected token: the rest of the draft is looked up and checked in the next pass, not written again.
    one, forwards = greedy_from_drafts(decoder, cond.rows(torch.tensor([row])), [drafts[row]], gen.max_tokens, pad)
    assert one == [texts[row]] and forwards == 2
    # A budget the text does not fit in ends it there, as token-by-token decoding does.
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    budget = len(texts[longest]) - 1
    alone = cond.rows(torch.tensor([longest]))
    cut, _ = greedy_from_drafts(decoder, alone, [texts[longest]], budget, pad)
    short = story_decoding.generate(decoder, alone, dataclasses.replace(gen, max_tokens=budget))
    assert cut == short.tokens == [texts[longest][:budget]]


def test_lookup_continues_the_draft_after_the_last_tokens_written():
    draft = [1, 2, 3, 9, 2, 3, 4, 5]
    assert lookup([7, 2, 3], draft) == [9, 2, 3, 4, 5]  # (2, 3) occurs twice: the one ending nearest position 3
    assert lookup([7, 7, 7, 7, 2, 3], draft) == [4, 5]  # ... or nearest position 6
    assert lookup([8, 4], draft) == [5]  # no bigram match: the last token alone
    assert lookup([8], draft) == [] and lookup([], draft) == []
    # The default suffix is a bigram: the trigram (7, 2, 3) further on is not what picks the match, unless asked for.
    assert lookup([7, 2, 3], [1, 2, 3, 4, 7, 2, 3, 5]) == [4, 7, 2, 3, 5]
    assert lookup([7, 2, 3], [1, 2, 3, 4, 7, 2, 3, 5], ngram=3) == [5]


def test_flat_lm_generates_from_the_same_cli(toy_flat_run, capsys):
    prompt = "Once upon a time there was a brave fox named Mia."
    for extra in ([], ["--beams", "3"], ["--sample", "--temperature", "0.8", "--top-k", "20", "--seed", "1"]):
        assert main(["generate", "--ckpt", str(toy_flat_run), "--prompt", prompt, "--sentences", "2", *extra]) == 0
        out = capsys.readouterr().out.strip()
        assert out.startswith(prompt) and len(out) > len(prompt)
    assert main(["generate", "--ckpt", str(toy_flat_run), "--prompt", prompt, "--json", "--sentences", "2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["prompt"] == prompt and record["text"] == record["continuations"][0] and record["text"]
    assert main(["generate", "--ckpt", str(toy_flat_run), "--prompt", prompt, "--goal", "Mia slept."]) == 2
    assert "needs a planner run" in error_line(capsys.readouterr().err)


def test_flat_continuation_is_the_cached_greedy_search_cut_to_whole_sentences(toy_flat_run):
    from hiertok.flat_generate import FlatGenerator

    gen = FlatGenerator.from_pretrained(toy_flat_run)
    prompt = "Once upon a time there was a brave fox named Mia."
    ids = torch.tensor([[gen.bpe.bos_id, *gen.bpe.encode(prompt)]])
    with torch.no_grad():  # the same greedy search without the KV cache: one full forward pass per token
        for _ in range(2 * 64):
            nxt = gen.lm.net(ids)[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], 1)
            if nxt.item() == gen.bpe.eos_id or int(gen.ends[ids[0, -(ids.shape[1] - 1) :]].sum()) >= 99:
                break
    written = ids[0, len(gen.bpe.encode(prompt)) + 1 :].tolist()
    written = written[: written.index(gen.bpe.eos_id)] if gen.bpe.eos_id in written else written
    ideas = gen.continue_ideas([prompt], sentences=2)[0]
    assert 1 <= len(ideas) <= 2
    assert gen.bpe.decode(written).startswith("".join(ideas))


def test_name_carryover_finds_the_introduced_name_again():
    from hiertok.eval_planner import name_carryover, named_character

    prompts = ["once upon a time, there was a girl named lily.", "tom ran.", "a dog called max barked."]
    names = [named_character(p) for p in prompts]
    assert names == ["lily", None, "max"]
    assert name_carryover(names, [" lily smiled.", " lily smiled.", " the dog was maxed out."]) == 0.5
    assert name_carryover([None], ["x"]) is None


@pytest.fixture(scope="module")
def toy_context_run(tmp_path_factory):
    """A toy tokenizer whose decoder reads the 2 earlier ideas and may copy them (with a story's first idea
    tokenized with a leading space), trained through the CLI."""
    args = [*TOY, "model.decoder.context=2", "model.decoder.copy=true", "data.lead_space=true"]

    def train(out):
        assert main(["train", "tokenizer", "--out", str(out), *args]) == 0

    return cached_run("toy_context", args, train, tmp_path_factory.mktemp("ctx") / "tok")


def test_a_context_tokenizer_round_trips_through_the_cli_with_any_number_of_passes(toy_context_run, tmp_path, capsys):
    stories = [s.text for s in StoryWorld().generate(2, seed=11)]
    src = tmp_path / "docs.txt"
    src.write_text("\n".join(stories) + "\n")
    assert main(["encode", "--ckpt", str(toy_context_run), str(src)]) == 0
    codes = tmp_path / "codes.jsonl"
    codes.write_text(capsys.readouterr().out)
    for passes in ("1", "0", "3"):
        assert main(["decode", "--ckpt", str(toy_context_run), "--passes", passes, str(codes)]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["decode", "--ckpt", str(toy_context_run), "--passes", "-1", str(codes)]) == 2
    assert "passes" in error_line(capsys.readouterr().err)
    # Reloaded, the run decodes the same (the cross-attention weights are saved and restored; the second pass reads
    # the first one's text through them).
    tok = IdeaTokenizer.from_pretrained(toy_context_run)
    encoded = tok.encode(stories)
    assert tok.decode(encoded, passes=2) == IdeaTokenizer.from_pretrained(toy_context_run).decode(encoded, passes=2)


def test_quantizer_outputs_placed_at_rows_keep_the_others_empty():
    from hiertok.quantize import QuantizerOutput

    part = QuantizerOutput(torch.ones(2, 3), torch.tensor([[4, 5], [6, 7]]), torch.tensor(0.5), torch.tensor([2, 1]))
    full = part.at_rows(torch.tensor([3, 0]), 4)
    assert full.quantized[:, 0].tolist() == [1, 0, 0, 1] and full.indices[1].tolist() == [-1, -1]
    assert full.indices[3].tolist() == [4, 5] and full.kept_levels.tolist() == [1, 0, 0, 2]


def test_every_decoding_entry_point_hands_its_settings_on(context_pipe):
    """`decode`, `decode_ideas` and `decode_to_ids` give what `decode_stories` gives for the same settings: the
    known text, the passes and the seed reach it, and their defaults are one pass and seed 0."""
    tok = context_pipe.tokenizer
    story = StoryWorld().generate(1, seed=9)[0]
    codes = tok.encode(story.text)
    prompt = tok.split(story.text)[:1]
    one, _ = tok.decode_stories(codes, passes=1)
    settled, _ = tok.decode_stories(codes, known=[prompt], passes=0)
    assert one != tok.decode_stories(codes, passes=2)[0]  # the untrained decoder reads its story: passes matter
    assert tok.decode_to_ids(codes) == one and tok.decode_to_ids(codes, known=[prompt], passes=0) == settled
    assert tok.decode(codes, known=[prompt], passes=0) == [tok.join(settled[0])]
    assert tok.decode_ideas(codes, known=[prompt], passes=0) == [tok.bpe.decode_batch(settled[0])]
    sampling = GenerationConfig(temperature=1.0, max_tokens=8)
    drawn = tok.decode_stories(codes, generation=sampling, seed=0)[0]
    assert tok.decode_to_ids(codes, generation=sampling) == drawn  # the default seed is 0
    assert drawn != tok.decode_stories(codes, generation=sampling, seed=1)[0]
    with pytest.raises(TypeError, match=r"hiertok.codes.Codes .*got list"):
        tok.decode_to_ids(codes.ids.tolist())


def rejecting(asked: list):
    """An `accept` that approves no candidate and records how many rows it was asked about in `asked`."""

    def accept(rows, found):
        asked.append(len(rows))
        return torch.zeros(len(found), len(rows), dtype=torch.bool)

    return accept


def test_decode_stories_reads_the_levels_it_is_given_and_its_own_defaults(context_pipe):
    """`decode_stories` decodes from the first `levels` codes only; by itself it samples with seed 0 and decodes one
    candidate (an `accept` is not asked); a document of no ideas decodes to none; levels or passes out of range
    are one-line errors that say why."""
    tok = context_pipe.tokenizer
    codes = tok.encode(StoryWorld().generate(1, seed=9)[0].text)
    short = GenerationConfig(max_tokens=8)  # an untrained decoder writes every idea to the budget
    full, _ = tok.decode_stories(codes, generation=short)
    coarse, _ = tok.decode_stories(codes, levels=1, generation=short)
    assert coarse == tok.decode_stories(codes.prefix(1), generation=short)[0] and coarse != full
    sampling = GenerationConfig(temperature=1.0, max_tokens=8)
    assert (
        tok.decode_stories(codes, generation=sampling)[0] == tok.decode_stories(codes, generation=sampling, seed=0)[0]
    )
    asked = []
    assert tok.decode_stories(codes, generation=short, accept=rejecting(asked))[0] == full and asked == []
    for bad in (0, codes.levels + 1):
        with pytest.raises(UserError, match=rf"levels must be in 1\.\.{codes.levels}, got {bad}"):
            tok.decode_stories(codes, levels=bad)
    # It runs the passes asked for (the untrained decoder reads its story: every pass changes something).
    assert [tok.decode_stories(codes, generation=short, passes=n)[1] for n in (1, 2)] == [1, 2]
    # Only greedy decoding starts a later pass from drafts: sampling and beam search decode every pass anew.
    for gen in (sampling, GenerationConfig(num_beams=2, max_tokens=8)):
        drafted = tok.decode_stories(codes, generation=gen, passes=0)[0]
        assert drafted == tok.decode_stories(codes, generation=gen, passes=0, verify=False)[0]
    with pytest.raises(UserError, match="passes must be >= 0, got -1"):
        tok.decode_stories(codes, passes=-1)
    empty = Codes(codes.ids[:, :0], codes.mask[:, :0], codes.codebook_sizes)  # a document of no ideas
    assert tok.decode_stories(empty) == ([[]], 0)
    assert tok.decode_stories(Codes(codes.ids[:0, :0], codes.mask[:0, :0], codes.codebook_sizes)) == ([], 0)
    deeper = Codes(torch.cat([codes.ids, codes.ids[..., :1]], -1), codes.mask, [*tok.codebook_sizes, 8])
    with pytest.raises(UserError, match=rf"codes have {tok.levels + 1} levels, this tokenizer has {tok.levels}"):
        tok.decode_stories(deeper)


def test_an_unapproved_idea_is_sampled_at_0_7_one_round_at_a_time(context_pipe, monkeypatch):
    """With n candidates, the ideas whose greedy text `accept` does not approve are sampled (temperature 0.7, one
    beam, whatever the generation settings), n - 1 rounds at most; the rounds stop once every idea has an approved
    candidate."""
    tok = context_pipe.tokenizer
    codes = tok.encode(StoryWorld().generate(1, seed=9)[0].text)
    n = int(codes.mask.sum())
    settings, asked, original = [], [], story_decoding.generate

    def record(decoder, cond, cfg, **kw):
        settings.append((cfg.num_beams, cfg.temperature))
        return original(decoder, cond, cfg, **kw)

    monkeypatch.setattr(story_decoding, "generate", record)

    def samples_only(rows, found):  # the first call is shown the greedy texts: none is approved; every sample is
        asked.append(len(rows))
        return torch.full((len(found), len(rows)), len(asked) > 1)

    tok.decode_stories(codes, generation=GenerationConfig(num_beams=2, max_tokens=8), candidates=3, accept=samples_only)
    assert asked == [n, n] and settings == [(2, 0.0), (1, 0.7)]  # greedy (here: beams), then one round of samples

    asked.clear()
    tok.decode_stories(codes, candidates=2, accept=rejecting(asked))
    assert asked == [n, n]  # two candidates: greedy, then one sample, each shown to `accept`


def test_a_decoder_that_reads_a_state_gets_each_ideas_own(context_pipe):
    """`decode_stories(states=)` and `idea_nats(states=)` hand each idea the state of its own row: with states that
    differ only at one idea, only that idea's nats change (and the decodings of the others stay)."""
    from hiertok.data.ideas import IdeaCorpus
    from hiertok.errors import UserError
    from hiertok.evaluate import corpus_codes, idea_nats
    from hiertok.story_decoding import decode_stories

    tok = context_pipe.tokenizer
    cfg = dataclasses.replace(tok.cfg)
    cfg.model = dataclasses.replace(cfg.model, decoder=dataclasses.replace(cfg.model.decoder, state_dim=4))
    torch.manual_seed(3)
    reader = IdeaTokenizer(cfg, tok.bpe)
    reader.model.load_state_dict(tok.model.state_dict(), strict=False)
    with torch.no_grad():
        reader.model.decoder.to_state.weight.normal_(std=3.0)
    reader.model.eval()
    docs = ["Tom ran home. He saw a red ball. It was big.", "Ann sat down. She smiled."]
    corpus = IdeaCorpus.build(docs, reader.bpe, reader.segmentation)
    codes = corpus_codes(reader, corpus)
    states = torch.randn(corpus.num_ideas, 4)
    other = states.clone()
    other[1] += 5.0
    base, _ = idea_nats(reader, corpus, codes, states=states)
    moved, _ = idea_nats(reader, corpus, codes, states=other)
    assert not torch.allclose(base[1], moved[1])
    keep = torch.arange(corpus.num_ideas) != 1
    assert torch.allclose(base[keep], moved[keep])
    first, _ = decode_stories(reader, codes, states=states)
    second, _ = decode_stories(reader, codes, states=other)
    assert first[0][0] == second[0][0] and first[1] == second[1]  # one pass: each idea reads only its own state
    with pytest.raises(UserError, match="states has 3 rows"):
        decode_stories(reader, codes, states=states[:3])


def test_expansion_hands_a_state_reading_decoder_the_planners_state(state_pipe, context_pipe):
    """`Pipeline.idea_states`: the planner's state before each idea, None for a decoder that reads none; a planned
    idea's state depends on the ideas before it only, and `expand` decodes with it (other states, other text)."""
    assert context_pipe.idea_states(context_pipe.tokenizer.encode(["Tom ran. He sat."])) is None
    tok = state_pipe.tokenizer
    codes = tok.encode(["Tom ran home. He saw a red ball. It was big.", "Ann sat down. She smiled."])
    states = state_pipe.idea_states(codes)
    assert states.shape == (int(codes.mask.sum()), state_pipe.planner.cfg.dim)
    ids = codes.ids.clone()
    ids[0, 2] = (ids[0, 2] + 1) % torch.tensor(codes.codebook_sizes)  # the first story's last idea changed
    moved = state_pipe.idea_states(Codes(ids, codes.mask, codes.codebook_sizes))
    assert torch.allclose(moved, states)  # no idea's state reads its own codes or later ones
    ids[0, 0] = (ids[0, 0] + 1) % torch.tensor(codes.codebook_sizes)
    moved = state_pipe.idea_states(Codes(ids, codes.mask, codes.codebook_sizes))
    assert not torch.allclose(moved[1:3], states[1:3]) and torch.allclose(moved[3:], states[3:])
    plans = [[Plan(codes.ids[0, 1:], True, 0.0, 0.0)]]
    prompt = codes.ids[:1, :1]
    written = state_pipe.expand(prompt, plans, candidates=1, passes=1)
    calls = []
    real = state_pipe.idea_states
    state_pipe.idea_states = lambda c: calls.append(c) or real(c) * 0  # every idea shown a zero state
    try:
        zeroed = state_pipe.expand(prompt, plans, candidates=1, passes=1)
    finally:
        del state_pipe.idea_states
    assert len(calls) == 1 and calls[0].num_docs == 1
    assert written != zeroed


def test_the_true_story_measure_decodes_each_later_idea_once_after_its_true_story(context_pipe, monkeypatch):
    """`cast_kept_true_story` decodes every idea after a story's first as the last of its story's prefix, the ideas
    before it given as text; a decoder that writes the truth keeps the cast, one that renames the friend in a
    later sentence breaks it there, counted once."""
    from hiertok.data.ideas import IdeaCorpus
    from hiertok.evaluate import cast_kept_true_story

    tok = context_pipe.tokenizer
    second = [
        "The sun came up and Sam jumped out of bed proudly.",
        "For a snack, Sam had warm berries and a cup of milk.",
    ]
    corpus = IdeaCorpus.build([" ".join(VALID), " ".join(second)], tok.bpe, tok.segmentation)
    flat = tok.encode_ideas([corpus.idea(i) for i in range(corpus.num_ideas)])
    truth = [tok.bpe.decode(corpus.idea(i).tolist()) for i in range(corpus.num_ideas)]
    asked = []

    def decode_ideas(codes, known=None, passes=1, **kw):
        asked.append((codes.mask.sum(1).tolist(), [len(k) for k in known], passes))
        out = []
        for n, k in zip(codes.mask.sum(1).tolist(), known):
            text = truth[len(VALID) + n - 1] if tok.bpe.decode(k[0]).strip() == second[0] else truth[n - 1]
            out.append([tok.bpe.decode(i) for i in k] + [text.replace("Leo", write_friend)])
        return out

    monkeypatch.setattr(tok, "decode_ideas", decode_ideas)
    write_friend = "Leo"
    assert cast_kept_true_story(tok, corpus, flat) == (1.0, {})
    assert asked[0] == ([2, 3, 4, 5, 6, 2], [1, 2, 3, 4, 5, 1], 0)
    write_friend = "Max"  # met "Leo" at sentence 3: sentences 3, 4 and 6 now name another friend
    kept, breaks = cast_kept_true_story(tok, corpus, flat)
    assert breaks == {"friend@play_game": 1, "friend@say_goodbye": 1} and kept == pytest.approx(4 / 6)


def test_eval_tokenizer_decodes_stories_again_only_when_asked(context_pipe):
    """`eval tokenizer` reports the story measures of the synthetic world (with a context, the true-story one too);
    the demo, which does not show them, skips those extra decodings."""
    from hiertok.data.ideas import IdeaCorpus
    from hiertok.evaluate import evaluate_tokenizer

    tok = context_pipe.tokenizer
    stories = StoryWorld().generate(2, seed=3)
    corpus = IdeaCorpus.build([s.text for s in stories], tok.bpe, tok.segmentation, [s.events for s in stories])
    full = evaluate_tokenizer(tok, corpus, progress=False)
    assert set(full.story_valid_decoded) >= {"codes", "first_known"} and full.cast_kept_true_story is not None
    lean = evaluate_tokenizer(tok, corpus, progress=False, story_measures=False)
    assert lean.story_valid_decoded is None and lean.cast_kept_true_story is None
    assert lean.exact_match_by_prefix == full.exact_match_by_prefix
