"""`hiertok demo`: the whole offline path on the built-in synthetic story world.

Train a tiny idea tokenizer (the default config), evaluate it on held-out stories, and show how new
stories come back from their codes at a few prefix depths. Rerunning resumes or reuses the run.
"""

from __future__ import annotations

from pathlib import Path

from hiertok.config import load_config
from hiertok.data.synthetic import StoryWorld
from hiertok.evaluate import evaluate_run
from hiertok.tokenizer import WEIGHTS_FILE, IdeaTokenizer, TokenizerConfig
from hiertok.train_tokenizer import train
from hiertok.training import METRICS_FILE


def run_demo(out: Path, overrides: list[str] | None = None) -> None:
    """Train (or resume / reuse), evaluate and show reconstructions.

    Args:
        out: run directory.
        overrides: config overrides key=value on top of the defaults.
    """
    cfg = load_config(TokenizerConfig, None, overrides or [])
    finished = (out / WEIGHTS_FILE).exists()
    if finished:
        print(f"[1/3] reusing the trained tokenizer in {out} (delete it to train again)")
    else:
        resume = (out / METRICS_FILE).exists()
        print(
            f"[1/3] {'resuming' if resume else 'training'} a tiny idea tokenizer on the synthetic story world -> {out}"
        )
        train(cfg, out, resume=resume)

    print("[2/3] evaluating on held-out stories")
    res = evaluate_run(str(out), "synthetic")
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

    print("[3/3] new stories -> codes -> text")
    tok = IdeaTokenizer.from_pretrained(out)
    story = StoryWorld().generate(1, seed=12345)[0]
    codes = tok.encode(story.text)
    depths = sorted({1, max(1, tok.levels // 2), tok.levels})
    decoded = {k: tok.decode_ideas(codes, levels=k)[0] for k in depths}
    for i, (sentence, event) in enumerate(zip(story.sentences, story.events)):
        print(f"  [{event}] codes {codes.ids[0, i].tolist()}")
        print(f"      original: {sentence.strip()}")
        for k in depths:
            print(f"      k={k:<7} {decoded[k][i].strip()}")
    print(
        f"done: the tokenizer is in {out}; try `hiertok encode --ckpt {out}` and `hiertok eval tokenizer "
        f"--ckpt {out} --data synthetic`"
    )
