"""A tokenizer run on video frames: trained through the CLI from a .npy file, told apart from a text run when
loaded, encoding videos to one idea per frame and decoding frames back."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hiertok.cli import main
from hiertok.codes import Codes
from hiertok.config import DataConfig
from hiertok.data.corpus import video_splits
from hiertok.data.video import VideoWorld, VideoWorldConfig
from hiertok.data.video_files import write_videos
from hiertok.data.video_floor import distinct_frames
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer

from .cached_runs import cached_run
from .cli_errors import error_line
from .experiment_scripts import load_script

WORLD = VideoWorldConfig(height=8, width=8, frames=6)
# Toy sizes on configs/tokenizer/video.yaml: 8 x 8 frames (64 pixel tokens), a few steps (the wiring is under test).
VIDEO_TOY = [
    "--config",
    str(Path(__file__).parents[1] / "configs" / "tokenizer" / "video.yaml"),
    "data.eval_docs=4",
    "data.video.height=8",
    "data.video.width=8",
    "data.video.frames=6",
    "model.decoder.max_len=65",
    "model.encoder.raster_width=8",
    "model.decoder.raster_width=8",
    "generation.max_tokens=64",
    "model.encoder.dim=32",
    "model.decoder.dim=32",
    "train.max_steps=12",
    "train.eval_every=12",
    "train.save_every=12",
    "train.eval_ideas=8",
    "train.progress=false",
]


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    write_videos(root / "videos.npy", VideoWorld(WORLD).generate(30, seed=4))
    args = [*VIDEO_TOY, f"data.source={root / 'videos.npy'}"]

    def train(out):
        assert main(["train", "tokenizer", "--out", str(out), *args]) == 0

    return cached_run("video", args, train, root / "tok", paths=[root / "videos.npy"])


def test_a_video_run_encodes_one_idea_per_frame_and_decodes_frames(video_run):
    assert (video_run / "pixels.json").is_file() and not (video_run / "tokenizer.json").exists()
    tok = IdeaTokenizer.from_pretrained(video_run)
    assert tok.is_video and tok.bpe.vocab_size == 7
    videos = VideoWorld(WORLD).generate(3, seed=9)
    codes = tok.encode_frames(videos)
    assert tuple(codes.ids.shape) == (3, 6, tok.levels) and codes.mask.all()
    assert np.array_equal(tok.encode_frames(videos[1]).ids[0], codes.ids[1])  # one video (T, H, W) alone
    frames = tok.decode_frames(codes)
    assert frames.shape == videos.shape and frames.dtype == np.uint8 and frames.max() <= 3
    coarse = tok.decode_frames(codes, levels=1)
    assert coarse.shape == videos.shape
    assert np.array_equal(IdeaTokenizer.from_pretrained(video_run).encode_frames(videos).ids, codes.ids)


def test_decoded_frames_of_no_ideas_are_empty_and_videos_of_two_lengths_are_refused(video_run):
    tok = IdeaTokenizer.from_pretrained(video_run)
    codes = tok.encode_frames(VideoWorld(WORLD).generate(2, seed=9))
    empty = tok.decode_frames(Codes(codes.ids[:, :0], codes.mask[:, :0], tok.codebook_sizes))
    assert empty.shape == (2, 0, WORLD.height, WORLD.width) and empty.dtype == np.uint8
    ragged = codes.mask.clone()
    ragged[1, 4:] = False  # the second video keeps 4 of its 6 frames
    with pytest.raises(UserError, match=r"different lengths \(\[4, 6\] frames\)"):
        tok.decode_frames(Codes(codes.ids, ragged, tok.codebook_sizes))


def test_decode_frames_hands_its_levels_and_settings_on(video_run):
    tok = IdeaTokenizer.from_pretrained(video_run)
    codes = tok.encode_frames(VideoWorld(WORLD).generate(2, seed=9))
    calls, decode_ideas = [], tok.decode_ideas
    tok.decode_ideas = lambda *a, **kw: calls.append((a, kw)) or decode_ideas(*a, **kw)
    frames = tok.decode_frames(codes, levels=2, seed=3)
    assert calls == [((codes, 2), {"seed": 3})]
    docs = decode_ideas(codes, 2, seed=3)
    assert np.array_equal(frames, np.stack([np.stack(d) for d in docs]))


def test_each_run_refuses_the_other_modality_in_one_line(video_run, toy_tok):
    video = IdeaTokenizer.from_pretrained(video_run)
    for call in (lambda: video.encode("Tom ran."), lambda: video.split("Tom ran."), lambda: video.join([[3]])):
        with pytest.raises(UserError, match="trained on video frames"):
            call()
    with pytest.raises(UserError, match="trained on text"):
        toy_tok.encode_frames(np.zeros((6, 8, 8), np.uint8))
    with pytest.raises(UserError, match="frames are 4 x 8 pixels"):
        video.encode_frames(np.zeros((6, 4, 8), np.uint8))


def test_the_video_world_and_a_file_give_training_and_held_out_videos(tmp_path):
    world = DataConfig(source="video", synthetic_docs=5, eval_docs=2, video=WORLD)
    train, held = video_splits(world)
    assert train.shape == (5, 6, 8, 8) and held.shape == (2, 6, 8, 8) and not np.array_equal(train[:2], held)
    videos = VideoWorld(WORLD).generate(5, seed=1)
    write_videos(tmp_path / "v.npy", videos)
    train, held = video_splits(DataConfig(source=str(tmp_path / "v.npy"), eval_docs=2, max_docs=2, video=WORLD))
    assert np.array_equal(held, videos[:2]) and np.array_equal(train, videos[2:4])
    with pytest.raises(UserError, match="all held out"):
        video_splits(DataConfig(source=str(tmp_path / "v.npy"), eval_docs=5, video=WORLD))


def test_bad_video_training_settings_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.npy").write_bytes(b"")
    out = str(tmp_path / "run")
    assert main(["train", "tokenizer", "--out", out, *VIDEO_TOY, f"data.source={tmp_path / 'bad.npy'}"]) == 2
    assert "bad.npy: the file is empty" in error_line(capsys.readouterr().err)
    short = [*VIDEO_TOY, "generation.max_tokens=32"]
    assert main(["train", "tokenizer", "--out", out + "2", *short, "data.source=video"]) == 2
    assert "a frame's pixels (64)" in error_line(capsys.readouterr().err)


def test_videos_round_trip_through_the_cli(video_run, toy_run, tmp_path, capsys):
    videos = VideoWorld(WORLD).generate(3, seed=5)
    write_videos(tmp_path / "in.npy", videos)
    assert main(["encode", "--ckpt", str(video_run), str(tmp_path / "in.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    tok = IdeaTokenizer.from_pretrained(video_run)
    assert [json.loads(line)["codes"] for line in lines] == tok.encode_frames(videos).ids.tolist()
    (tmp_path / "codes.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "frames.npy"
    assert (
        main(["decode", "--ckpt", str(video_run), "--levels", "2", "--out", str(out), str(tmp_path / "codes.jsonl")])
        == 0
    )
    assert np.array_equal(np.load(out), tok.decode_frames(tok.encode_frames(videos), levels=2))
    # The other modality's input, or frames with nowhere to go, is one line.
    cases = [
        (["encode", "--ckpt", str(video_run), str(tmp_path / "codes.jsonl")], "give it a .npy file"),
        (["encode", "--ckpt", str(toy_run), str(tmp_path / "in.npy")], "in.npy holds frames"),
        (["decode", "--ckpt", str(video_run), str(tmp_path / "codes.jsonl")], "--out file.npy"),
        (["decode", "--ckpt", str(toy_run), "--out", str(out), str(tmp_path / "codes.jsonl")], "a video run"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in error_line(capsys.readouterr().err), argv


@pytest.fixture(scope="module")
def video_planner(video_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("video_plan") / "plan"
    tiny = ["model.dim=32", "model.depth=1", "train.batch_size=8", "train.max_steps=4", "train.eval_every=4"]
    config = str(Path(__file__).parents[1] / "configs" / "planner" / "video.yaml")
    assert main(["train", "planner", "--config", config, "--out", str(run), f"tokenizer={video_run}", *tiny]) == 0
    return run


def test_a_planner_trains_on_a_video_runs_codes(video_run, video_planner):
    import dataclasses

    from hiertok.pipeline import Pipeline
    from planner.config import data_config
    from planner.shards import load_corpus, shard_dir_for

    pipe = Pipeline.from_pretrained(video_planner)
    tok = pipe.tokenizer
    data = data_config(pipe.cfg, tok)  # the planner's choice of videos (a file: the same videos)
    corpus = load_corpus(shard_dir_for(video_run, data, "train"))
    assert corpus.num_docs == 26 and corpus.codes.shape == (26 * 6, tok.levels)  # 30 videos, 4 held out
    first = np.load(data.source)[4]  # the first training video
    assert np.array_equal(corpus.doc(0), tok.encode_frames(first).ids[0].numpy())
    longer = dataclasses.replace(data, video=dataclasses.replace(data.video, frames=7))
    assert shard_dir_for(video_run, longer, "train") != shard_dir_for(video_run, data, "train")


def test_generate_continues_frames_with_the_planners_decoded_frames(video_planner, tmp_path):
    """`generate --frames` writes the context and then exactly --steps frames: the best plan's codes, decoded (the
    planner may not end a video early), in the rank of the input."""
    from hiertok.pipeline import Pipeline
    from planner.search import SearchConfig

    context = VideoWorld(WORLD).generate(2, seed=7)[:, :3]
    write_videos(tmp_path / "ctx.npy", context)
    out = tmp_path / "roll" / "out.npy"
    argv = ["generate", "--ckpt", str(video_planner), "--frames", str(tmp_path / "ctx.npy"), "--out", str(out)]
    assert main([*argv, "--steps", "4"]) == 0
    videos = np.load(out)
    assert videos.shape == (2, 7, 8, 8) and videos.dtype == np.uint8
    assert np.array_equal(videos[:, :3], context)
    pipe = Pipeline.from_pretrained(video_planner)
    tok = pipe.tokenizer
    search = SearchConfig(max_ideas=4, num_beams=pipe.cfg.search.num_beams, allow_end=False)
    plans = pipe.plans(tok.encode_frames(context).ids, None, search)
    for b, per in enumerate(plans):
        best = per[0].codes
        assert best.shape[0] == 4
        decoded = tok.decode_frames(Codes(best[None], torch.ones(1, 4, dtype=torch.bool), tok.codebook_sizes))
        assert np.array_equal(videos[b, 3:], decoded[0])
    write_videos(tmp_path / "one.npy", context[0])  # one video (T, H, W) in, one out
    assert (
        main([*argv[:-3], str(tmp_path / "one.npy"), "--out", str(out), "--steps", "2", "--sample", "--seed", "3"]) == 0
    )
    one = np.load(out)
    assert one.shape == (5, 8, 8) and np.array_equal(one[:3], context[0])
    default = pipe.cfg.search.max_ideas
    assert main(argv) == 0 and np.load(out).shape == (2, 3 + default, 8, 8)
    truth = VideoWorld(WORLD).generate(2, seed=7)
    write_videos(tmp_path / "truth.npy", truth)
    gif = tmp_path / "g" / "roll.gif"
    assert main([*argv[:-2], "--gif", str(gif), "--truth", str(tmp_path / "truth.npy"), "--steps", "2"]) == 0
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 5


def test_generate_frames_refuses_what_has_no_meaning_in_one_line(video_planner, toy_planner_run, tmp_path, capsys):
    context = VideoWorld(WORLD).generate(1, seed=7)[:, :3]
    write_videos(tmp_path / "ctx.npy", context)
    np.save(tmp_path / "float.npy", context.astype(np.float32))
    np.save(tmp_path / "small.npy", context[..., :4])
    frames = ["--frames", str(tmp_path / "ctx.npy")]
    out = ["--out", str(tmp_path / "o.npy")]
    plan = ["generate", "--ckpt", str(video_planner)]
    cases = [
        ([*plan, *frames, *out, "--goal", "Tom ran."], "--goal has no meaning with --frames"),
        ([*plan, *frames, *out, "--decode-passes", "2"], "--decode-passes has no meaning"),
        ([*plan, *frames], "give --out file.npy"),
        ([*plan, *frames, "--out", str(tmp_path / "o.gif")], "give --out file.npy"),
        ([*plan, *frames, *out, "--steps", "0"], "steps must be"),
        ([*plan, "--frames", str(tmp_path / "float.npy"), *out], "float.npy: frames must hold integer"),
        ([*plan, "--frames", str(tmp_path / "small.npy"), *out], "small.npy: frames are 8 x 4 pixels"),
        ([*plan, *frames, "--gif", str(tmp_path / "g.png")], "give --gif file.gif"),
        ([*plan, *frames, *out, "--truth", str(tmp_path / "ctx.npy")], "give --gif too"),
        ([*plan, *frames, "--gif", str(tmp_path / "g.gif"), "--truth", str(tmp_path / "small.npy")], "8 x 4 pixels"),
        ([*plan, "--prompt", "Tom ran."], "trained on video frames"),
        ([*plan, "--prompt", "Tom ran.", "--steps", "3"], "--steps goes with --frames"),
        (["generate", "--ckpt", str(toy_planner_run), *frames, *out], "trained on text"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in error_line(capsys.readouterr().err), argv
    assert not (tmp_path / "o.npy").exists()


def test_the_gif_tiles_each_video_beside_its_truth_and_marks_the_context(tmp_path):
    from PIL import Image

    from hiertok.video_gif import CONTEXT, GAP, GENERATED, MISSING, gif_frames, write_gif

    videos = np.zeros((2, 3, 2, 2), np.uint8)
    videos[0, :, 0, 0] = [1, 2, 3]  # video 0's top-left pixel changes colour every frame
    truth = np.full((2, 2, 2, 2), 3, np.uint8)  # shorter than the rollout: its third frame is missing
    frames = gif_frames(videos, 1, truth)
    assert frames.shape == (3, 2 + 2 + 1, 2 * (2 + 1 + 2 + 1))  # one row of two tiles: strip, frame, gap
    assert frames[:, 2, 0].tolist() == [1, 2, 3]  # video 0's pixel under its 2-row strip
    assert frames[0, 0, 0] == CONTEXT and frames[1, 0, 0] == GENERATED and frames[2, 1, 4] == GENERATED
    assert frames[0, 2:4, 3:5].tolist() == [[3, 3], [3, 3]] and frames[2, 2, 3] == MISSING  # truth beside
    assert frames[0, 2, 2] == GAP and frames[0, 4, 0] == GAP
    assert gif_frames(np.zeros((5, 1, 2, 2), np.uint8), 1).shape == (1, 2 * 5, 3 * 3)  # 5 videos: 3 x 2 grid
    write_gif(tmp_path / "a" / "roll.gif", videos, 1, truth, scale=4)
    with Image.open(tmp_path / "a" / "roll.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (12 * 4, 5 * 4)
        gif.seek(2)
        assert gif.convert("RGB").getpixel((0, 2 * 4)) == (70, 130, 230)  # colour 3 in the third frame
    with pytest.raises(UserError, match="the same videos"):
        write_gif(tmp_path / "b.gif", videos, 1, truth[:1])
    with pytest.raises(UserError, match=r"\.gif file"):
        write_gif(tmp_path / "b.png", videos, 1)


def test_eval_scores_a_video_tokenizer_and_planner_on_held_out_videos(video_run, video_planner, tmp_path, capsys):
    """`eval tokenizer` gives reconstruction and what-and-where by level, `eval planner` next frames and rollouts;
    both on the run's held-out videos by default, or on a .npy file (`--data`), as computed directly."""
    from hiertok.data.corpus import train_videos
    from hiertok.pipeline import Pipeline
    from hiertok.rollout import rollout
    from hiertok.video_eval import PROBE_VIDEOS
    from hiertok.video_objects import objects_right
    from hiertok.video_probe import code_vectors, probe_positions, random_like

    videos = VideoWorld(WORLD).generate(3, seed=11)
    write_videos(tmp_path / "v.npy", videos)
    assert main(["eval", "tokenizer", "--ckpt", str(video_run), "--data", str(tmp_path / "v.npy")]) == 0
    report = json.loads(capsys.readouterr().out)
    tok = IdeaTokenizer.from_pretrained(video_run)
    assert sorted(report["by_level"], key=int) == ["1", "2", "4", str(tok.levels)] and report["frames"] == 18
    decoded = tok.decode_frames(tok.encode_frames(videos), levels=2)
    assert report["by_level"]["2"]["pixel_accuracy"] == float((decoded == videos).mean())
    assert report["by_level"]["2"]["objects_right"] == objects_right(decoded, videos)
    # The position probe: fitted on the run's training videos, scored on these, beside random weights' codes.
    train = train_videos(dataclasses.replace(tok.cfg.data, max_docs=PROBE_VIDEOS))
    frames = lambda v: v.reshape(-1, *v.shape[-2:])  # noqa: E731
    for t, prefix in ((tok, ""), (random_like(tok), "random_")):
        x_train, x_held = (code_vectors(t, t.encode_frames(v), 2) for v in (train, videos))
        expect = probe_positions(x_train, frames(train), x_held, frames(videos))
        assert report["probe"]["2"][prefix + "within_1px"] == expect["within_1px"]
        assert report["probe"]["2"][prefix + "r2"] == pytest.approx(expect["r2"])
    assert report["probe"]["2"]["r2"] != report["probe"]["2"]["random_r2"]
    assert main(["eval", "tokenizer", "--ckpt", str(video_run)]) == 0
    assert json.loads(capsys.readouterr().out)["videos"] == 4  # the run's held-out videos (data.eval_docs)
    rollouts = ["--context-frames", "2", "--rollout-frames", "4", "--beams", "2", "--data", str(tmp_path / "v.npy")]
    assert main(["eval", "planner", "--ckpt", str(video_planner), *rollouts]) == 0
    report = json.loads(capsys.readouterr().out)
    pipe = Pipeline.from_pretrained(video_planner)
    generated = rollout(pipe, videos[:, :2], steps=4, beams=2)[:, 2:]
    exact = (generated == videos[:, 2:]).all((-2, -1))
    assert report["rollout_exact_per_step"] == exact.mean(0).tolist()
    assert report["rollout_all_exact"] == float(exact.all(1).mean())
    assert 0.0 <= report["next_frame_exact"] <= 1.0 and report["videos"] == 3
    assert main(["eval", "planner", "--ckpt", str(video_planner), "--rollout-frames", "16"]) == 2
    assert "need videos of 20 frames, got 6" in error_line(capsys.readouterr().err)
    assert main(["eval", "tokenizer", "--ckpt", str(video_run), "--data", "synthetic"]) == 2
    assert "'video' (the built-in world) or a .npy file" in error_line(capsys.readouterr().err)
    assert main(["eval", "codelength", "--ckpt", str(video_planner)]) == 2
    assert "built for text runs only" in error_line(capsys.readouterr().err)


def test_a_rollout_asks_the_search_for_exactly_its_frames(video_planner, monkeypatch):
    """The planner may not end a video early: the search is asked for `steps` ideas with no end, by beam search or
    by sampling as asked, and the frames are decoded from the planned levels only."""
    from hiertok.pipeline import Pipeline
    from hiertok.rollout import rollout

    pipe = Pipeline.from_pretrained(video_planner)
    asked = []
    plans = pipe.plans
    monkeypatch.setattr(
        pipe, "plans", lambda codes, goal, search, *a: asked.append(search) or plans(codes, goal, search, *a)
    )
    context = VideoWorld(WORLD).generate(1, seed=3)[:, :2]
    rollout(pipe, context, steps=3, beams=2)
    rollout(pipe, context, steps=2, sample=True, temperature=0.5, seed=4)
    assert [(s.max_ideas, s.allow_end, s.num_beams) for s in asked] == [(3, False, 2), (2, False, 1)]
    assert asked[0].temperature == 0.0 and asked[1].temperature == 0.5


def test_compress_256_tables_pixel_and_text_runs_against_the_frame_floor(video_run, toy_run, tmp_path, capsys):
    """experiments/compress_256.py on the toy runs: one row per k and kind, bits of k codes, floors of the world."""
    script = load_script("compress_256")
    out = tmp_path / "c256"
    args = [
        "--pixels",
        str(video_run),
        "--text",
        str(toy_run),
        "--out",
        str(out),
        "--text-ks",
        "1,2",
        "--max-docs",
        "3",
    ]
    assert script.main(args) == 0
    result = json.loads((out / "results.json").read_text())
    rows = {(r["chunk"], r["k"]): r for r in result["rows"]}
    levels = IdeaTokenizer.from_pretrained(video_run).levels
    assert set(rows) == {("pixels", k) for k in (1, 2, 4, 8) if k <= levels} | {("text", 1), ("text", 2)}
    assert rows[("pixels", 2)]["bits_per_chunk"] == pytest.approx(2 * math.log2(1000))
    assert all(0 <= r["exact_match"] <= 1 and r["runs"] == 1 for r in rows.values())
    assert rows[("text", 2)]["bpb"] > 0 and "bpb" not in rows[("pixels", 1)]
    assert result["floors"]["frame_alone"] == pytest.approx(math.log2(distinct_frames(WORLD)))
    assert result["floors"]["frame_given_past"] == 0.0  # deterministic videos
    assert (out / "compress_256.png").stat().st_size > 0 and "| pixels | 1 |" in (out / "results.md").read_text()
    assert script.main(["--pixels", str(toy_run), "--out", str(out)]) == 2
    assert "not a video tokenizer run" in error_line(capsys.readouterr().err, "compress_256")
    assert script.main(["--text", str(toy_run), "--out", str(out), "--text-ks", "64"]) == 2
