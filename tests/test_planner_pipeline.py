"""The planner stage end to end on toy runs: code shards, training, the pipeline, generate and eval CLIs."""

import dataclasses
import io
import json
import shutil

import pytest
import torch

from hiertok.cli import main
from hiertok.codes import Codes
from hiertok.pipeline import Pipeline
from planner.search import Plan
from planner.shards import TokenizerMismatchError, load_corpus, tokenizer_hash

from .runs import metrics


def test_planner_trains_and_records_its_tokenizer(toy_run, toy_planner_run):
    train = metrics(toy_planner_run, "train")
    assert train[-1]["bits_per_idea"] < train[0]["bits_per_idea"]
    assert metrics(toy_planner_run, "eval")[-1]["bits_per_idea"] > 0
    config = (toy_planner_run / "config.yaml").read_text()
    assert f"tokenizer_hash: {tokenizer_hash(toy_run)}" in config
    assert (toy_planner_run / "model.safetensors").is_file()


def test_code_shards_are_cached_under_the_tokenizer_with_their_hash(toy_run, toy_planner_run):
    shard_dirs = sorted((toy_run / "codes").iterdir())
    assert [d.name.split("-")[0] for d in shard_dirs] == ["heldout", "train"]
    corpus = load_corpus(shard_dirs[1], expect_hash=tokenizer_hash(toy_run))
    assert corpus.meta["ideas"] == len(corpus.codes) > 0 and corpus.meta["docs"] == corpus.num_docs == 300
    assert corpus.codes.shape[1] == corpus.meta["levels"] == 4
    with pytest.raises(TokenizerMismatchError, match="re-encode"):
        load_corpus(shard_dirs[1], expect_hash="0" * 16)


def test_a_planner_refuses_a_different_tokenizer(toy_run, toy_planner_run, tmp_path, capsys):
    other = tmp_path / "tok"
    shutil.copytree(toy_run, other, ignore=shutil.ignore_patterns("checkpoints", "codes"))
    with open(other / "tokenizer.json", "a") as f:
        f.write(" ")  # same tokenizer, different bytes: the hash must still catch it
    with pytest.raises(TokenizerMismatchError, match="was trained on tokenizer"):
        Pipeline.from_pretrained(toy_planner_run, tokenizer=other)
    assert main(["train", "planner", "--out", str(tmp_path / "p"), f"tokenizer={other}", "tokenizer_hash=abc"]) == 2
    assert "hash" in capsys.readouterr().err


def test_generate_cli_beam_plan_and_json(toy_planner_run, capsys):
    args = ["generate", "--ckpt", str(toy_planner_run), "--prompt", "Tom found a key.", "--sentences", "3"]
    assert main([*args, "--beams", "2", "--show-plan"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan: ") and out.rstrip().splitlines()[-1].startswith("Tom found a key.")
    assert main([*args, "--beams", "4", "--diverse-groups", "2", "--json", "--no-end"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["plans"]) == 4 and all(len(p["codes"]) == 3 for p in record["plans"])
    assert [p["score"] for p in record["plans"]] == sorted((p["score"] for p in record["plans"]), reverse=True)
    assert record["text"] == "".join(record["plans"][0]["ideas"])


def test_generate_cli_sampling_goal_and_stdin(toy_planner_run, capsys, monkeypatch):
    base = ["generate", "--ckpt", str(toy_planner_run), "--json", "--sentences", "2"]
    monkeypatch.setattr("sys.stdin", io.StringIO("Mia saw a bird.\n"))
    assert main([*base, "--sample", "--temperature", "0.8", "--top-p", "0.9", "--num-samples", "3", "--seed", "1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["prompt"] == "Mia saw a bird." and len(first["plans"]) == 3
    monkeypatch.setattr("sys.stdin", io.StringIO("Mia saw a bird.\n"))
    assert main([*base, "--sample", "--temperature", "0.8", "--top-p", "0.9", "--num-samples", "3", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == first  # seeded
    assert main([*base, "--prompt", "Mia saw a bird.", "--goal", "They lived happily."]) == 0
    assert json.loads(capsys.readouterr().out)["plans"]
    assert main([*base, "--prompt", "x.", "--goal", "One. Two."]) == 2
    assert "one sentence" in capsys.readouterr().err
    assert main([*base, "--prompt", "x.", "--beams", "3", "--diverse-groups", "2"]) == 2
    assert main(["generate", "--ckpt", str(toy_planner_run / "missing"), "--prompt", "x."]) == 2


def test_eval_planner_cli_writes_every_key(toy_planner_run, toy_flat_run, tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert (
        main(
            [
                "eval",
                "planner",
                "--ckpt",
                str(toy_planner_run),
                "--data",
                "synthetic",
                "--max-docs",
                "8",
                "--prompts",
                "4",
                "--beams",
                "2",
                "--decode-passes",
                "2",
                "--baseline",
                str(toy_flat_run),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["decode_passes"] == 2 and result["beams"] == 2  # the flags reach the evaluation
    for key in (
        "bits_per_idea",
        "bits_per_idea_by_level",
        "next_idea_top1",
        "next_idea_top5",
        "unigram_top1",
        "bigram_top1",
        "plan_adherence_level1",
        "plan_adherence_full",
        "grammar_valid",
        "goal_reached",
    ):
        assert key in result, key
    assert result["prompts"] == 4 and 0 <= result["grammar_valid"] <= 1 and 0 <= result["goal_reached"] <= 1
    assert 1 <= result["planned_ideas"] <= 14  # plans of 1 idea at least, 4 past the longest story (10 sentences)
    flat = result["flat"]  # the flat LM's continuations of the same prompts, scored alike
    assert len(flat["examples"]) == 4 and 0 <= flat["grammar_valid"] <= 1 and 0 <= flat["story_valid"] <= 1
    assert 0 <= flat["ideas"] <= 14
    assert len(result["bits_per_idea_by_level"]) == 4
    assert result["bits_per_idea"] == pytest.approx(sum(result["bits_per_idea_by_level"].values()))


def test_a_planner_of_the_coarse_levels_plans_and_decodes_from_the_prefix(toy_run, tmp_path, capsys):
    from .conftest import PLANNER_TOY

    run = tmp_path / "coarse"
    assert main(["train", "planner", "--out", str(run), f"tokenizer={toy_run}", "levels=2", *PLANNER_TOY]) == 0
    capsys.readouterr()
    pipe = Pipeline.from_pretrained(run)
    assert pipe.levels == 2 and pipe.planner.vocab.codebook_sizes == (240, 1000)  # FSQ 256 -> 240 codes
    out = pipe.generate("Tom found a key.", sentences=2, beams=2, allow_end=False)
    assert all(len(codes) == 2 for codes in out.best.codes) and len(out.best.ideas) == 2
    assert main(["train", "planner", "--out", str(tmp_path / "bad"), f"tokenizer={toy_run}", "levels=9"]) == 2
    assert "levels must be in 1..4" in capsys.readouterr().err


def test_decoding_candidates_keep_the_idea_that_follows_the_plan_best(toy_pipe):
    prompt = toy_pipe.tokenizer.encode(["Tom found a key."]).ids[:, :1, : toy_pipe.levels]
    plans = toy_pipe.plans(
        prompt, None, dataclasses.replace(toy_pipe.cfg.search, num_beams=2, max_ideas=4, allow_end=False)
    )

    def agreement(texts):  # leading levels on which each idea's re-encoding agrees with its plan
        planned = torch.cat([p.codes for p in plans[0]])
        again = toy_pipe.tokenizer.encode_ideas([toy_pipe.tokenizer.bpe.encode(t) for per in texts[0] for t in per])
        return (again[:, : toy_pipe.levels] == planned).long().cumprod(1).sum(1)

    greedy = toy_pipe.expand(prompt, plans, candidates=1)
    docs = torch.stack([torch.cat([prompt[0], p.codes]) for p in plans[0]])
    plain = toy_pipe.tokenizer.decode_ideas(
        Codes(docs, torch.ones(docs.shape[:2], dtype=torch.bool), toy_pipe.tokenizer.codebook_sizes)
    )
    assert greedy == [[ideas[1:] for ideas in plain]]  # one candidate: plain greedy decoding
    best = toy_pipe.expand(prompt, plans, candidates=6, seed=1)
    assert [len(per) for per in best[0]] == [4, 4]
    assert (agreement(best) >= agreement(greedy)).all()
    assert toy_pipe.expand(prompt, plans, candidates=6, seed=1) == best  # seeded


def test_the_kept_candidate_is_the_first_that_re_encodes_to_the_planned_gist(toy_pipe, monkeypatch):
    """Greedy first for every idea; then one sample at a time for the ideas none of whose candidates has the plan's
    gist yet (6 at most); each idea keeps its first candidate with the gist, greedy where none has it."""
    tok = toy_pipe.tokenizer
    prompt = tok.encode(["Tom found a key.", "Mia lost her red ball."]).ids[:, :1, : toy_pipe.levels]
    plans = toy_pipe.plans(
        prompt, None, dataclasses.replace(toy_pipe.cfg.search, num_beams=2, max_ideas=4, allow_end=False)
    )
    calls = []  # (rows, the candidate drawn for each) of every call of the pick, in order
    original = type(tok).decode_stories

    def record(self, codes, *args, accept=None, **kw):
        def spy(rows, found):
            assert len(found) == 1  # one candidate per row and call
            calls.append((rows.tolist(), found[0]))
            return accept(rows, found)

        return original(self, codes, *args, accept=spy, **kw)

    monkeypatch.setattr(type(tok), "decode_stories", record)
    kept = toy_pipe.expand(prompt, plans, candidates=6, seed=1)
    # Every idea of every document (the prompt's, then the plan's) is decoded, in this order.
    gist = torch.cat([torch.cat([prompt[i, :, 0], p.codes[:, 0]]) for i, per in enumerate(plans) for p in per])

    def agrees(rows, cands):  # recomputed here: each candidate's re-encoding, its level-1 code against the plan's
        encoded = tok.encode_ideas([ids or [tok.bpe.eos_id] for ids in cands])[:, 0]
        return [bool(ids) and bool(e == gist[r]) for r, ids, e in zip(rows, cands, encoded)]

    assert calls[0][0] == list(range(len(gist)))  # no story context: one pass, greedy for every idea first
    drawn = {r: [] for r in range(len(gist))}  # per idea, its candidates and whether each has the gist
    for rows, cands in calls:
        for r, ids, ok in zip(rows, cands, agrees(rows, cands)):
            assert not any(good for _, good in drawn[r])  # an idea with the gist is not decoded again
            drawn[r].append((ids, ok))
    assert all(len(c) == 6 or c[-1][1] for c in drawn.values())  # the others get all six
    expected = [next((ids for ids, ok in c if ok), c[0][0]) for c in drawn.values()]
    planned = [r for r in range(len(gist)) if r % 5]  # each document: 1 prompt idea, 4 planned
    assert [t for per in kept for plan in per for t in plan] == tok.bpe.decode_batch([expected[r] for r in planned])
    assert any(not c[0][1] and c[-1][1] for c in drawn.values())  # greedy misses the gist where a sample has it
    assert toy_pipe.expand(prompt, plans, candidates=6, seed=1) == kept  # seeded


def test_a_goal_reaches_the_plans(toy_pipe, toy_planner_run, capsys):
    """The goal's codes reach the planner: the plans' log-probabilities (beam search) move with the goal, and
    through the CLI too. The toy planner barely uses its goal (about 1e-3 nats); without it the figures are
    equal to the last bit (the search is deterministic)."""
    prompt, goal = "Tom found a key.", "Tired but happy, Tom closed both eyes and fell asleep."
    free = toy_pipe.generate(prompt, sentences=3, beams=2, allow_end=False)
    aimed = toy_pipe.generate(prompt, sentences=3, beams=2, allow_end=False, goal=goal)
    other = toy_pipe.generate(prompt, sentences=3, beams=2, allow_end=False, goal="Mia and Leo played tag.")
    for a, b in ((free, aimed), (aimed, other)):
        assert any(x.codes != y.codes or abs(x.logprob - y.logprob) > 1e-5 for x, y in zip(a.plans, b.plans)), (
            "the goal did not change the plans"
        )
    args = ["generate", "--ckpt", str(toy_planner_run), "--prompt", prompt, "--json", "--sentences", "3", "--no-end"]
    assert main(args) == 0 and main([*args, "--goal", goal]) == 0
    without, with_goal = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert [p["logprob"] for p in without["plans"]] != [p["logprob"] for p in with_goal["plans"]]


def test_expand_hands_the_prompt_text_and_its_settings_to_the_decoding(toy_pipe, monkeypatch):
    tok = toy_pipe.tokenizer
    texts = ["Tom found a key.", "Mia lost her red ball."]
    prompt = tok.encode(texts).ids[:, :1, : toy_pipe.levels]
    ideas = [tok.split(t)[:1] for t in texts]
    search = dataclasses.replace(toy_pipe.cfg.search, num_beams=2, max_ideas=2, allow_end=False)
    plans = toy_pipe.plans(prompt, None, search)
    calls = []
    original = type(tok).decode_stories

    def record(self, codes, *args, **kw):
        calls.append(kw)
        return original(self, codes, *args, **kw)

    monkeypatch.setattr(type(tok), "decode_stories", record)
    # The run's own candidate count, not 1 (the toy's): a default that fell back to one candidate would show.
    toy_pipe.cfg.search = dataclasses.replace(toy_pipe.cfg.search, decode_candidates=3)
    toy_pipe.expand(prompt, plans, candidates=2, seed=5, prompt_ideas=ideas, passes=2, verify=False)
    toy_pipe.expand(prompt, plans)
    given, default = calls
    assert given["known"] == [ideas[i] for i, per in enumerate(plans) for _ in per]  # the prompt's own text
    assert (given["candidates"], given["seed"], given["passes"], given["verify"]) == (2, 5, 2, False)
    cfg = toy_pipe.cfg.search
    assert default["known"] is None
    assert (default["candidates"], default["seed"], default["passes"], default["verify"]) == (
        cfg.decode_candidates,
        0,
        cfg.decode_passes,
        True,
    )


def test_a_plan_that_arrives_at_its_goal_ends_with_the_goal_sentence(toy_pipe, monkeypatch):
    """The goal's text is known: a plan whose last idea has the goal's codes is written with it, word for word;
    a plan that ends elsewhere, and every earlier idea, is decoded as without a goal."""
    tok = toy_pipe.tokenizer
    prompt, goal = "Tom found a key.", "Tired but happy, Mia closed both eyes and fell asleep."
    prompt_codes = tok.encode([prompt]).ids[:, :1, : toy_pipe.levels]
    goal_codes = tok.encode([goal]).ids[:, 0, : toy_pipe.levels]
    other = tok.encode(["Mia and Leo played tag by the lake. Leo found a red kite."]).ids[0, :2, : toy_pipe.levels]
    assert not (other == goal_codes).all(1).any()
    # Three ideas, so that the last one is not also the second (a plan of two would not tell them apart).
    arrives = Plan(torch.cat([other, goal_codes]), True, 0.0, 0.0)
    elsewhere = Plan(torch.cat([goal_codes, other]), True, 0.0, 0.0)  # the goal's codes, but not last
    plans, known = [[arrives, elsewhere]], [tok.split(prompt)]
    without = toy_pipe.expand(prompt_codes, plans, candidates=1, prompt_ideas=known)[0]
    with_goal = toy_pipe.expand(
        prompt_codes, plans, candidates=1, prompt_ideas=known, goal_codes=goal_codes, goal_ideas=[tok.split(goal)[0]]
    )[0]
    assert len(with_goal[0]) == 3 and with_goal[0][-1].strip() == goal and without[0][-1].strip() != goal
    assert with_goal[0][:-1] == without[0][:-1] and with_goal[1] == without[1]
    # The goal's codes without its text (or its text without its codes) write nothing in its place.
    assert toy_pipe.expand(prompt_codes, plans, candidates=1, prompt_ideas=known, goal_codes=goal_codes)[0] == without
    only_text = toy_pipe.expand(prompt_codes, plans, candidates=1, prompt_ideas=known, goal_ideas=[tok.split(goal)[0]])
    assert only_text[0] == without
    handed = []
    expand = Pipeline.expand
    monkeypatch.setattr(Pipeline, "expand", lambda self, *a, **kw: handed.append(kw) or expand(self, *a, **kw))
    toy_pipe.generate(prompt, sentences=2, beams=2, goal=goal)
    assert torch.equal(handed[0]["goal_codes"], goal_codes) and handed[0]["goal_ideas"] == [tok.split(goal)[0]]


def test_held_out_prompts_and_their_best_plans(toy_pipe):
    from hiertok.data.synthetic import StoryWorld
    from hiertok.errors import UserError
    from hiertok.eval_planner import best_plans, held_out_prompts

    tok = toy_pipe.tokenizer
    stories = [s.text for s in StoryWorld().generate(4, seed=7)]
    docs = ["Only one sentence here.", *stories]  # a document of one idea has nothing to continue: skipped
    prompts = held_out_prompts(toy_pipe, docs, 3, synthetic=True, beams=2)
    assert prompts.docs == [1, 2, 3] and len(prompts) == 3
    assert prompts.first.shape == (3, 1, toy_pipe.levels) and prompts.last.shape == (3, toy_pipe.levels)
    for i, d in enumerate(prompts.docs):
        ideas = tok.split(docs[d])
        assert prompts.ideas[i] == [ideas[0]] and prompts.goal_ideas[i] == ideas[-1]
        assert prompts.first[i, 0].tolist() == tok.encode_ideas([ideas[0]])[0, : toy_pipe.levels].tolist()
    assert prompts.search.num_beams == 2 and prompts.search.temperature == 0.0
    assert prompts.search.max_ideas == max(len(tok.split(docs[d])) for d in prompts.docs) + 4
    plans, texts = best_plans(toy_pipe, prompts, chunk=2)  # two searches
    assert len(plans) == len(texts) == 3 and [len(t) for t in texts] == [len(p.codes) for p in plans]
    search = toy_pipe.plans

    def arriving(first, goals, cfg):  # the search toward goals, each best plan made to end at its goal
        found = search(first, goals, cfg)
        ends = [torch.cat([per[0].codes[:-1], goals[i][None]]) for i, per in enumerate(found)]
        return [[dataclasses.replace(per[0], codes=end)] for per, end in zip(found, ends)]

    toy_pipe.plans = arriving
    plans, texts = best_plans(toy_pipe, prompts, toward_goals=True, chunk=2)
    assert [p.codes[-1].tolist() for p in plans] == prompts.last.tolist()
    for i in range(3):  # a plan that arrives at its goal ends with the goal's own sentence
        assert texts[i][-1].strip() == tok.bpe.decode(prompts.goal_ideas[i]).strip()
    with pytest.raises(UserError, match="two ideas or more"):
        held_out_prompts(toy_pipe, ["Only one sentence here."], 3, synthetic=True)


def test_video_code_caches_keep_their_key_for_the_knobs_at_their_defaults():
    from hiertok.data.video import VideoWorldConfig
    from planner.shards import _video_key

    before = {"height": 16, "width": 16, "frames": 20, "objects": 2, "turn_prob": 0.0}  # the knobs codes were cached by
    assert _video_key(VideoWorldConfig()) == before
    assert _video_key(VideoWorldConfig(speed=2, exclude=[3, 2])) == {**before, "speed": 2, "exclude": [3, 2]}
