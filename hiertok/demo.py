"""`hiertok demo`: the whole offline pipeline on the built-in synthetic story world.

1. train a tiny idea tokenizer (configs/tokenizer/tiny.yaml) and evaluate it on held-out stories;
2. show new stories coming back from their codes at a few prefix depths;
3. encode the corpus into codes and train the tiny planner on them (configs/planner/tiny.yaml);
4. evaluate the planner (bits per idea, grammar of generated stories, goals reached);
5. generate: a prompt continued with beam search, then with a goal sentence.

Runs go to OUT/tokenizer and OUT/planner; rerunning resumes an interrupted run or reuses a finished one.
"""

from __future__ import annotations

from pathlib import Path

from hiertok.config import load_config, split_planner_overrides
from hiertok.data.synthetic import StoryWorld
from hiertok.errors import UserError
from hiertok.eval_planner import evaluate_planner_run
from hiertok.evaluate import evaluate_run
from hiertok.pipeline import Pipeline
from hiertok.shipped_configs import config_path
from hiertok.tokenizer import WEIGHTS_FILE, IdeaTokenizer, TokenizerConfig
from hiertok.train_tokenizer import train as train_tokenizer
from hiertok.training import METRICS_FILE
from planner.config import PlannerConfig
from planner.train import train as train_planner

EVAL_STORIES = 100  # `hiertok eval tokenizer --data synthetic` evaluates on 300
EVAL_PROMPTS = 100


def _train_or_reuse(what: str, run: Path, train) -> None:
    if (run / WEIGHTS_FILE).exists():
        print(f"      reusing the trained {what} in {run} (delete it to train again)")
        return
    resume = (run / METRICS_FILE).exists()
    print(f"      {'resuming' if resume else 'training'} the {what} -> {run}")
    train(resume)


def run_demo(
    out: Path, overrides: list[str] | None = None, prompts: int = EVAL_PROMPTS, stories: int = EVAL_STORIES
) -> None:
    """Train (or resume / reuse) tokenizer and planner, evaluate both, show reconstructions and generations.

    Args:
        out: demo directory (OUT/tokenizer, OUT/planner).
        overrides: tokenizer config overrides key=value; `planner.KEY=VALUE` ones go to the planner.
        prompts: held-out stories the planner evaluation generates from.
        stories: held-out stories the tokenizer evaluation reconstructs.
    """
    if prompts < 1 or stories < 1:
        raise UserError(f"the demo evaluates at least one story and one prompt, got {stories} and {prompts}")
    overrides = overrides or []
    tok_only, plan_over = split_planner_overrides(overrides)
    tok_cfg = load_config(TokenizerConfig, config_path("tokenizer/tiny"), tok_only)  # the shipped file
    tok_dir, plan_dir = out / "tokenizer", out / "planner"
    print("[1/5] idea tokenizer on the synthetic story world")
    _train_or_reuse("tiny idea tokenizer", tok_dir, lambda resume: train_tokenizer(tok_cfg, tok_dir, resume=resume))
    print(f"      evaluating on {stories} held-out stories")
    res = evaluate_run(str(tok_dir), "synthetic", max_docs=stories, story_measures=False)  # figures it does not show
    print(
        f"      {res.num_ideas} held-out sentences; bits/byte with true codes {res.bpb_true_codes:.3f}, "
        f"with shuffled codes {res.bpb_shuffled_codes:.3f}; level-1 / event NMI {res.event_nmi_level1:.3f}"
    )
    print("      k levels | bits/idea | exact match | token acc | bits/byte")
    for k in res.exact_match_by_prefix:
        print(
            f"      {k:>8} | {res.bits_per_idea_by_prefix[k]:9.1f} | {res.exact_match_by_prefix[k]:11.3f} | "
            f"{res.token_accuracy_by_prefix[k]:9.3f} | {res.bpb_by_prefix[k]:9.3f}"
        )
    if res.exact_match_unseen is not None:
        print(f"      exact match on {res.num_unseen} sentences never seen in training: {res.exact_match_unseen:.3f}")

    print("[2/5] new stories -> codes -> text")
    tok = IdeaTokenizer.from_pretrained(tok_dir)
    story = StoryWorld().generate(1, seed=12345)[0]
    codes = tok.encode(story.text)
    depths = sorted({1, max(1, tok.levels // 2), tok.levels})
    decoded = {k: tok.decode_ideas(codes, levels=k)[0] for k in depths}
    for i, (sentence, event) in enumerate(zip(story.sentences[:3], story.events)):
        print(f"  [{event}] codes {codes.ids[0, i].tolist()}")
        print(f"      original: {sentence.strip()}")
        for k in depths:
            print(f"      k={k:<7} {decoded[k][i].strip()}")

    print("[3/5] planner over the tokenizer's codes (the corpus is encoded once, then cached)")
    plan_cfg = load_config(PlannerConfig, config_path("planner/tiny"), [f"tokenizer={tok_dir}", *plan_over])
    _train_or_reuse("tiny planner", plan_dir, lambda resume: train_planner(plan_cfg, plan_dir, resume=resume))

    print(f"[4/5] evaluating the planner ({prompts} held-out prompts, beam search)")
    pe = evaluate_planner_run(str(plan_dir), "synthetic", prompts=prompts)
    print(
        f"      code bits per idea {pe.bits_per_idea:.1f} (level 1: {pe.bits_per_idea_by_level['1']:.2f}); "
        f"next-idea top-1 at level 1 {pe.next_idea_top1['level1']:.3f} "
        f"(bigram baseline {pe.bigram_top1['level1']:.3f})"
    )
    print(
        f"      grammar-valid stories {pe.grammar_valid:.3f} (random ideas: {pe.grammar_valid_unigram:.3f}); "
        f"grammar-valid and keeping their cast {pe.story_valid:.3f}"
    )
    print(
        f"      goal reached {pe.goal_reached:.3f} (goal sentence written as given {pe.goal_exact:.3f}); "
        f"plan adherence level 1 {pe.plan_adherence_level1:.3f}, planned levels {pe.plan_adherence_full:.3f}"
    )

    print("[5/5] generation: prompt -> plan -> all planned sentences decoded in one batch")
    pipe = Pipeline.from_pretrained(plan_dir)
    world = StoryWorld()
    held = world.generate(2, seed=54321)
    prompt, goal = held[0].sentences[0], held[1].sentences[-1]
    for title, kw in (("beam search", {}), (f"toward the goal {goal!r}", {"goal": goal})):
        gen = pipe.generate(prompt, beams=4, **kw)
        print(f"  {title}: log-probability {gen.best.logprob:.1f}, {len(gen.best.ideas)} planned sentences")
        print(f"      {prompt}")
        for idea, c in zip(gen.best.ideas, gen.best.codes):
            print(f"      {idea.strip():<72} [{world.classify(idea) or '?'}] level-1 code {c[0]}")
    print(
        f'done: try `hiertok generate --ckpt {plan_dir} --prompt "{prompt}" --show-plan` '
        f"and `hiertok eval planner --ckpt {plan_dir} --data synthetic`"
    )
