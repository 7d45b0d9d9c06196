"""Peak memory of `hiertok encode` on a small and a ten times larger input, side by side: encoding streams.

    python experiments/bench_encode_memory.py --tokenizer runs/story_context/fast-s0/tokenizer

Each input is N short documents (lines of the synthetic world) plus one document of 1,500 sentences. `encode` runs
in its own process, its peak resident memory read from the OS; the ratio of the two peaks is the figure (a streaming
encoder holds one batch of documents, whatever the input's length).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hiertok.data.synthetic import StoryWorld


def write_input(path: Path, lines: int, seed: int = 0) -> None:
    """`lines` one-story documents and, in the middle, one document of 1,500 sentences."""
    stories = [s.text for s in StoryWorld().generate(min(lines, 5000), seed=seed)]
    long_doc = " ".join(s for story in StoryWorld().generate(300, seed=seed + 1) for s in story.sentences)[:200_000]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(stories[i % len(stories)] + "\n")
            if i == lines // 2:
                f.write(long_doc + "\n")


def peak_rss_mb(argv: list[str], stdin_path: Path) -> tuple[float, float]:
    """Peak resident memory (MB) and wall time (s) of one child process reading `stdin_path`."""
    probe = (
        "import resource, subprocess, sys;"
        f"subprocess.run({argv!r}, stdin=open({str(stdin_path)!r}, 'rb'), stdout=subprocess.DEVNULL, check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / 1024, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokenizer", required=True, help="a trained tokenizer run")
    p.add_argument("--sizes", type=int, nargs=2, default=[5000, 50000], help="short documents in the two inputs")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"in_{n}.txt"
            write_input(path, n)
            mb, seconds = peak_rss_mb([sys.executable, "-m", "hiertok.cli", "encode", "--ckpt", args.tokenizer], path)
            rows.append(
                {"documents": n + 1, "input_mb": path.stat().st_size / 2**20, "peak_rss_mb": mb, "seconds": seconds}
            )
            print(json.dumps(rows[-1]))
    result = {"rows": rows, "peak_ratio": rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]}
    print(json.dumps({"peak_ratio": round(result["peak_ratio"], 3)}))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
