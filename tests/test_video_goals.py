"""Goal-conditioned rollouts: a video planner of goals at a distance (configs/planner/video-stochastic.yaml) plans
frame N toward a goal frame (`generate --goal-frame`), keeps the first plan whose frame N decodes to the goal, and
`eval planner` scores how often a rollout is legal and reaches it."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hiertok.cli import main
from hiertok.codes import Codes
from hiertok.data.video import VideoWorld
from hiertok.data.video_files import write_videos
from hiertok.pipeline import Pipeline
from hiertok.rollout import planned_frames, rollout
from hiertok.video_moves import legal_videos
from planner.search import Plan, SearchConfig

from .cli_errors import error_line
from .test_video_tokenizer import WORLD, video_planner, video_run  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def goal_planner(video_run, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("video_goal") / "plan"
    tiny = ["model.dim=32", "model.depth=1", "train.batch_size=8", "train.max_steps=4", "train.eval_every=4"]
    config = str(Path(__file__).parents[1] / "configs" / "planner" / "video-stochastic.yaml")
    argv = ["train", "planner", "--config", config, "--out", str(run), f"tokenizer={video_run}", "data.window=6"]
    assert main([*argv, *tiny]) == 0
    return run


def test_generate_plans_toward_the_goal_frame(goal_planner, tmp_path):
    """The CLI's rollout is the library's, given the goal: one goal frame for every video, or one each."""
    videos = VideoWorld(WORLD).generate(2, seed=9)
    write_videos(tmp_path / "ctx.npy", videos[:, :3])
    np.save(tmp_path / "goal.npy", videos[0, 5])
    np.save(tmp_path / "goals.npy", videos[:, 5])
    out = tmp_path / "out.npy"
    pipe = Pipeline.from_pretrained(goal_planner)
    base = ["generate", "--ckpt", str(goal_planner), "--frames", str(tmp_path / "ctx.npy"), "--out", str(out)]
    for goal_file, goal in (("goal.npy", videos[0, 5]), ("goals.npy", videos[:, 5])):
        assert main([*base, "--steps", "3", "--goal-frame", str(tmp_path / goal_file)]) == 0
        got = np.load(out)
        assert got.shape == (2, 6, 8, 8) and np.array_equal(got[:, :3], videos[:, :3])
        assert np.array_equal(got, rollout(pipe, videos[:, :3], steps=3, goal=goal))


def test_the_first_plan_whose_last_frame_is_the_goal_is_kept(goal_planner, monkeypatch):
    """Plans come best first; with a goal, the first whose frame N decodes to it wins, and without one that does,
    the best; the planner is shown the goal's codes."""
    pipe = Pipeline.from_pretrained(goal_planner)
    tok = pipe.tokenizer
    context = VideoWorld(WORLD).generate(1, seed=2)[:, :3]
    g = torch.Generator().manual_seed(0)
    codes = [torch.stack([torch.randint(0, s, (2,), generator=g) for s in tok.codebook_sizes], -1) for _ in range(3)]
    decode = lambda c: tok.decode_frames(Codes(c[None], torch.ones(1, 2, dtype=torch.bool), tok.codebook_sizes))[0]  # noqa: E731
    frames = [decode(c) for c in codes]
    assert not np.array_equal(frames[2][-1], frames[0][-1]) and not np.array_equal(frames[2][-1], frames[1][-1])
    shown = []

    def plans(prompt, goal, search, *args):
        shown.append(goal)
        return [[Plan(c, False, -float(i), -float(i)) for i, c in enumerate(codes)]]

    monkeypatch.setattr(pipe, "plans", plans)
    search = SearchConfig(max_ideas=2, num_beams=3, allow_end=False)
    goal = frames[2][-1][None]
    assert np.array_equal(planned_frames(pipe, context, search, goal=goal)[0], frames[2])
    assert torch.equal(shown[-1], tok.encode_frames(goal[:, None]).ids[:, 0])
    unreachable = (goal + 1) % 4
    assert np.array_equal(planned_frames(pipe, context, search, goal=unreachable)[0], frames[0])
    assert np.array_equal(planned_frames(pipe, context, search)[0], frames[0]) and shown[-1] is None


def test_bad_goal_frames_are_one_line(goal_planner, video_planner, tmp_path, capsys):  # noqa: F811
    context = VideoWorld(WORLD).generate(2, seed=9)[:, :3]
    write_videos(tmp_path / "ctx.npy", context)
    np.save(tmp_path / "goal.npy", context[0, 0])
    np.save(tmp_path / "float.npy", context[0, 0].astype(np.float32))
    np.save(tmp_path / "small.npy", context[0, 0, :4])
    np.save(tmp_path / "three.npy", context[:, 0].repeat(2, 0)[:3])
    np.save(tmp_path / "video.npy", context)
    run = [
        "generate",
        "--ckpt",
        str(goal_planner),
        "--frames",
        str(tmp_path / "ctx.npy"),
        "--out",
        str(tmp_path / "o.npy"),
    ]
    cases = [
        ([*run, "--goal-frame", str(tmp_path / "float.npy")], "float.npy: frames must hold integer"),
        ([*run, "--goal-frame", str(tmp_path / "small.npy")], "small.npy: frames are 4 x 8 pixels"),
        ([*run, "--goal-frame", str(tmp_path / "three.npy")], "3 goal frames for 2 videos"),
        ([*run, "--goal-frame", str(tmp_path / "video.npy")], "a goal frame is (h, w) or (b, h, w)"),
        ([*run, "--goal-frame", str(tmp_path / "missing.npy")], "missing.npy"),
        (
            ["generate", "--ckpt", str(video_planner), *run[3:], "--goal-frame", str(tmp_path / "goal.npy")],
            "--goal-frame needs a planner of goals at a distance",
        ),
        (
            ["generate", "--ckpt", str(goal_planner), "--prompt", "Tom ran.", "--goal-frame", "g.npy"],
            "goes with --frames",
        ),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in error_line(capsys.readouterr().err), argv
    assert not (tmp_path / "o.npy").exists()


def test_eval_scores_goal_conditioned_rollouts(goal_planner, tmp_path, capsys):
    videos = VideoWorld(WORLD).generate(3, seed=11)
    write_videos(tmp_path / "v.npy", videos)
    args = ["--context-frames", "2", "--rollout-frames", "4", "--goal-steps", "3", "--beams", "2"]
    assert main(["eval", "planner", "--ckpt", str(goal_planner), *args, "--data", str(tmp_path / "v.npy")]) == 0
    report = json.loads(capsys.readouterr().out)
    pipe = Pipeline.from_pretrained(goal_planner)
    search = pipe.search_settings(3, 2, allow_end=False)
    reached_frames = planned_frames(pipe, videos[:, :2], search, goal=videos[:, 4])
    valid = legal_videos(np.concatenate([videos[:, :2], reached_frames], axis=1), 2)
    reached = (reached_frames[:, -1] == videos[:, 4]).all((-2, -1))
    assert (report["goal_steps"], report["goal_beams"]) == (3, 2)
    assert report["goal_valid_and_reached"] == float((valid & reached).mean())
    assert (report["goal_valid"], report["goal_reached"]) == (float(valid.mean()), float(reached.mean()))
    assert (
        main(
            [
                "eval",
                "planner",
                "--ckpt",
                str(goal_planner),
                "--goal-steps",
                "5",
                "--context-frames",
                "2",
                "--rollout-frames",
                "2",
                "--data",
                str(tmp_path / "v.npy"),
            ]
        )
        == 2
    )
    assert "goal-conditioned rollouts of 5 frames from 2 need videos of 7 frames, got 6" in error_line(
        capsys.readouterr().err
    )
