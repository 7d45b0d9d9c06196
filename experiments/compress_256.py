"""Can a chunk of 256 tokens be compressed to k codes? One table and one plot for two kinds of chunk.

- Pixel frames (256 pixels each): a video tokenizer run, decoded from its first k levels, k in 1, 2, 4, 8, 16, 32;
  exact frames and pixel accuracy against the bits of k codes, beside the world's floors (hiertok/data/video_floor.py:
  a frame alone, about 19 bits for 2 objects; a frame given the earlier ones, 0 bits without turns).
- TinyStories chunks of 256 BPE tokens (a tokenizer trained with `data.segmenter=chunk data.chunk_size=256`): the
  first k levels of one matryoshka tokenizer, k in 8, 16, 32, 64, 128; token accuracy, exact match and bits per byte
  as the decoder's token bits given k codes plus the k codes at their raw size (an upper bound: no planner per k).

Several runs of a kind (seeds) give mean ± sd. Writes results.md, results.json and compress_256.png to --out.

    python experiments/compress_256.py --pixels runs/c256/video-s0 runs/c256/video-s1 runs/c256/video-s2 \
        --text runs/c256/ts-s0 --out experiments/results/compress_256
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from harness.seeds import aggregate

from hiertok.data.corpus import heldout_split
from hiertok.data.ideas import IdeaCorpus
from hiertok.data.video_floor import frame_floor_bits, next_frame_floor_bits
from hiertok.errors import UserError
from hiertok.evaluate import corpus_codes, prefix_bits, teacher_forced
from hiertok.tokenizer import IdeaTokenizer
from hiertok.video_eval import eval_videos

PIXEL_KS = (1, 2, 4, 8, 16, 32)
TEXT_KS = (8, 16, 32, 64, 128)


def levels_kept(tok: IdeaTokenizer, ks: tuple[int, ...], run: str) -> list[int]:
    """The ks a run can decode from (k <= its levels); UserError if none."""
    kept = [k for k in ks if k <= tok.levels]
    if not kept:
        raise UserError(f"{run} has {tok.levels} levels: none of k = {','.join(map(str, ks))}")
    return kept


def pixel_rows(run: str, max_docs: int | None, ks: tuple[int, ...] = PIXEL_KS) -> list[dict]:
    """One row per k of a video run: held-out frames decoded from their first k levels (`token_accuracy`: pixels)."""
    tok = IdeaTokenizer.from_pretrained(run)
    if not tok.is_video:
        raise UserError(f"--pixels {run}: not a video tokenizer run")
    videos = eval_videos(tok.cfg.data, None, max_docs)
    codes = tok.encode_frames(videos)
    rows = []
    for k in levels_kept(tok, ks, run):
        decoded = tok.decode_frames(codes, levels=k)
        rows.append(
            {
                "chunk": "pixels",
                "k": k,
                "bits_per_chunk": prefix_bits(tok.codebook_sizes, k),
                "exact_match": float((decoded == videos).all((-2, -1)).mean()),
                "token_accuracy": float((decoded == videos).mean()),
            }
        )
    return rows


def text_rows(run: str, max_docs: int | None, ks: tuple[int, ...] = TEXT_KS) -> list[dict]:
    """One row per k of a text run: its held-out chunks decoded and scored from their first k levels."""
    tok = IdeaTokenizer.from_pretrained(run)
    if tok.is_video:
        raise UserError(f"--text {run}: a video run (give it to --pixels)")
    split = heldout_split(tok.cfg.data, limit=max_docs)
    corpus = IdeaCorpus.build(split.docs(), tok.bpe, tok.segmentation)
    texts = [tok.bpe.decode(corpus.idea(i).tolist()) for i in range(corpus.num_ideas)]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    codes = corpus_codes(tok, corpus)
    rows = []
    for k in levels_kept(tok, ks, run):
        decoded = [t for doc in tok.decode_ideas(codes, levels=k) for t in doc]
        nats, accuracy = teacher_forced(tok, corpus, codes.prefix(k))
        bits = prefix_bits(tok.codebook_sizes, k)
        rows.append(
            {
                "chunk": "text",
                "k": k,
                "bits_per_chunk": bits,
                "exact_match": float(np.mean([d == t for d, t in zip(decoded, texts)])),
                "token_accuracy": accuracy,
                "bpb": (nats / math.log(2) + bits * corpus.num_ideas) / n_bytes,
                "tokens_per_chunk": float(np.diff(corpus.idea_offsets).mean()),
            }
        )
    return rows


def over_seeds(per_run: list[list[dict]]) -> list[dict]:
    """Rows of several runs of one kind -> one row per k with each figure's mean and `_sd` (the ablation
    harness's `aggregate`: sample sd, None for one run) and `runs`."""
    if len({tuple(r["k"] for r in rows) for rows in per_run}) > 1:
        raise UserError("the runs of one kind decode different levels: give seeds of one config")
    rows = [{**r, "cell": f"{r['chunk']}-k{r['k']}"} for run in per_run for r in run]
    figures = [key for key in rows[0] if key not in ("cell", "chunk", "k")]
    out = aggregate(rows, figures)
    for row in out:
        row["runs"] = row.pop("seeds")
        del row["cell"]
    return out


def table(rows: list[dict], floors: dict[str, float]) -> str:
    def cell(row: dict, key: str) -> str:
        if key not in row:
            return "-"
        sd = row[f"{key}_sd"]
        return f"{row[key]:.3f}" if sd is None else f"{row[key]:.3f} ± {sd:.3f}"

    keys = ["exact_match", "token_accuracy", "bpb"]
    lines = ["# 256 tokens -> k codes", ""]
    if not math.isnan(floors["frame_alone"]):
        lines += [
            f"Pixel frames: a frame alone needs at least {floors['frame_alone']:.2f} bits (log2 of the frames the "
            f"rules can draw), a frame given the earlier ones {floors['frame_given_past']:.2f}. For pixels, "
            "token_accuracy is pixel accuracy.",
            "",
        ]
    lines += [
        "| chunk | k | bits per chunk | runs | " + " | ".join(keys) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(keys),
    ]
    for r in rows:
        lines.append(
            f"| {r['chunk']} | {r['k']} | {r['bits_per_chunk']:.0f} | {r['runs']} | "
            + " | ".join(cell(r, key) for key in keys)
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], floors: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for chunk, marker in (("pixels", "o"), ("text", "s")):
        mine = [r for r in rows if r["chunk"] == chunk]
        if mine:
            xs = [r["bits_per_chunk"] for r in mine]
            ax.errorbar(
                xs,
                [r["exact_match"] for r in mine],
                yerr=[r["exact_match_sd"] or 0.0 for r in mine],
                marker=marker,
                capsize=3,
                label=f"{chunk} (256 {'pixels' if chunk == 'pixels' else 'BPE tokens'})",
            )
    if any(r["chunk"] == "pixels" for r in rows):
        ax.axvline(floors["frame_alone"], color="grey", linestyle=":", label="a frame's floor, alone")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="bits of the first k codes", ylabel="exact match", ylim=(-0.02, 1.02), title="256 tokens -> k codes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _ks(text: str, flag: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(","))
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1:
        raise UserError(f"{flag} takes levels >= 1 joined by commas, e.g. 1,2,4, got {text!r}")
    return ks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pixels", nargs="*", default=[], help="video tokenizer runs (seeds of one config)")
    p.add_argument("--text", nargs="*", default=[], help="text tokenizer runs of 256-token chunks (seeds)")
    p.add_argument("--max-docs", type=int, default=None, help="held-out videos / documents (default: the run's)")
    p.add_argument("--pixel-ks", default=",".join(map(str, PIXEL_KS)), help="levels kept, for --pixels")
    p.add_argument("--text-ks", default=",".join(map(str, TEXT_KS)), help="levels kept, for --text")
    p.add_argument("--out", default="experiments/results/compress_256")
    args = p.parse_args(argv)
    try:
        if not args.pixels and not args.text:
            raise UserError("give --pixels and/or --text runs")
        pixel_ks, text_ks = _ks(args.pixel_ks, "--pixel-ks"), _ks(args.text_ks, "--text-ks")
        rows = []
        world = None
        if args.pixels:
            rows += over_seeds([pixel_rows(run, args.max_docs, pixel_ks) for run in args.pixels])
            world = IdeaTokenizer.from_pretrained(args.pixels[0]).cfg.data.video
        if args.text:
            rows += over_seeds([text_rows(run, args.max_docs, text_ks) for run in args.text])
    except (UserError, FileNotFoundError) as e:
        print(f"compress_256: error: {e}", file=sys.stderr)
        return 2
    floors = {
        "frame_alone": frame_floor_bits(world) if world else float("nan"),
        "frame_given_past": next_frame_floor_bits(world) if world else float("nan"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"floors": floors, "rows": rows}, indent=2) + "\n")
    (out / "results.md").write_text(table(rows, floors))
    plot(rows, floors, out / "compress_256.png")
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
