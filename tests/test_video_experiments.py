"""The video experiment scripts on toy runs: experiments/video_generalisation.py (a planner scored on faster squares,
and one trained without a colour x size pair scored on videos that each have it, each beside its own world) and
experiments/coarse_planning.py (one planner per number of planned levels)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hiertok.cli import main

from .experiment_scripts import load_script
from .test_video_tokenizer import VIDEO_TOY, video_planner, video_run  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def pair_planner(tmp_path_factory):
    """A toy tokenizer and planner on the built-in video world without squares of colour 3 and size 2."""
    root = tmp_path_factory.mktemp("video_pair")
    world = ["data.source=video", "data.synthetic_docs=30", "data.video.exclude=[3,2]"]
    assert main(["train", "tokenizer", "--out", str(root / "tok"), *VIDEO_TOY, *world]) == 0
    tiny = ["model.dim=32", "model.depth=1", "train.batch_size=8", "train.max_steps=4", "train.eval_every=4"]
    config = str(Path(__file__).parents[1] / "configs" / "planner" / "video.yaml")
    argv = ["train", "planner", "--config", config, "--out", str(root / "plan"), f"tokenizer={root / 'tok'}"]
    assert main([*argv, "data.synthetic_docs=30", *tiny]) == 0
    return root / "plan"


def test_generalisation_rows_beside_their_own_world(pair_planner, tmp_path):
    out = tmp_path / "gen"
    flags = ["--videos", "3", "--context", "2", "--steps", "3", "--beams", "2", "--out", str(out)]
    runs = ["--planner", str(pair_planner), "--pair-planner", str(pair_planner)]
    assert load_script("video_generalisation").main([*runs, *flags]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert [r["videos"] for r in rows] == [
        "its own world (speed 1)",
        "speed 2",
        "its own world (no colour 3 size 2)",
        "each with colour 3 size 2",
    ]
    for r in rows:
        assert r["count"] == 3 and len(r["rollout_exact_per_step"]) == 3
        assert 0.0 <= r["rollout_all_exact"] <= 1.0 and 0.0 <= r["next_frame_exact"] <= 1.0
        assert 0.0 <= r["exact_frame_k1"] <= 1.0
    assert "| each with colour 3 size 2 | 3 |" in (out / "results.md").read_text() and (out / "results.csv").is_file()


def test_the_held_out_videos_are_the_planners_world_with_the_knobs_changed(pair_planner):
    from hiertok.pipeline import Pipeline

    script, pipe = load_script("video_generalisation"), Pipeline.from_pretrained(pair_planner)
    own, fast = script.held_out(pipe, 20), script.held_out(pipe, 20, speed=2)
    assert own.shape == fast.shape == (20, 6, 8, 8) and not np.array_equal(own, fast)
    colour_3 = (own[:, 0] == 3).sum((-2, -1))  # colour 3 is painted last, so its square shows whole
    assert set(colour_3.tolist()) <= {0, 9}  # trained without 2 x 2 squares of colour 3
    unseen = script.held_out(pipe, 20, exclude=None, require=[3, 2])
    assert ((unseen[:, 0] == 3).sum((-2, -1)) == 4).all()


def test_runs_the_tests_cannot_score_are_one_line_errors(video_planner, tmp_path, capsys):  # noqa: F811
    script = load_script("video_generalisation")
    assert script.main(["--planner", str(video_planner), "--out", str(tmp_path)]) == 2  # trained on a .npy file
    assert "not on the built-in video world" in capsys.readouterr().err
    assert script.main(["--pair-planner", str(video_planner), "--out", str(tmp_path)]) == 2
    assert "data.video.exclude" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path)])  # neither run given: argparse's usage error


def test_coarse_planning_trains_one_planner_per_k_and_reuses_it(video_run, tmp_path, capsys):  # noqa: F811
    script = load_script("coarse_planning")
    tiny = ["model.dim=32", "model.depth=1", "train.batch_size=8", "train.max_steps=4", "train.eval_every=4"]
    runs = tmp_path / "runs"
    argv = ["--levels", "1", "2", "--runs", str(runs), "--out", str(tmp_path / "out"), "--videos", "3"]
    argv += ["--context", "2", "--steps", "3", "--beams", "2", "--set", *tiny]
    assert script.main(["--tokenizer", str(video_run), *argv]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["planned_levels"] for r in rows] == [1, 2]
    assert all(not r["decoder_saw_earlier_frames"] and len(r["rollout_exact_per_step"]) == 3 for r in rows)
    assert "levels: 1" in (runs / "k1" / "config.yaml").read_text()
    weights = runs / "k1" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert script.main(["--tokenizer", str(video_run), *argv]) == 0 and weights.stat().st_mtime_ns == before  # reused
    weights.unlink()  # as if interrupted after its last checkpoint: resumed, with the same overrides
    assert script.main(["--tokenizer", str(video_run), *argv]) == 0 and weights.is_file()
    other = tmp_path / "other_tok"
    shutil.copytree(video_run, other)  # another tokenizer run: the planners trained on the first are not reused
    assert script.main(["--tokenizer", str(other), *argv]) == 2
    assert "give another --runs" in capsys.readouterr().err
