"""Analysis by synthesis for frames (hiertok/frame_search.py): a decoded frame that does not encode back to its codes
is replaced by the most likely near frame that does, and nothing else changes."""

import numpy as np
import pytest
import torch

from hiertok import frame_search
from hiertok.codes import Codes
from hiertok.errors import UserError
from hiertok.tokenizer import IdeaTokenizer

from .test_video_tokenizer import video_planner, video_run  # noqa: F401  (fixtures)


class _Digits:
    """A stand-in tokenizer whose code of a 2 x 2 frame is its four pixels read as base-4 digits: one frame a code."""

    def encode_frames(self, videos: np.ndarray):
        flat = videos.reshape(len(videos), -1).astype(np.int64)
        ids = (flat * 4 ** np.arange(flat.shape[1])).sum(1)
        return Codes(torch.as_tensor(ids)[:, None, None], torch.ones(len(videos), 1, dtype=torch.bool), [256])


def _log_probs(best: list[int], second: list[int], gaps: list[float]) -> np.ndarray:
    """(4, 4) pixel log-probabilities with `best` first and `second` `gaps` below it."""
    logp = np.full((4, 4), -20.0)
    for p, (b, s, g) in enumerate(zip(best, second, gaps)):
        logp[p, b], logp[p, s] = -0.1, -0.1 - g
    return logp


def test_a_frame_that_fails_its_check_takes_the_most_likely_near_frame_that_passes(monkeypatch):
    tok = _Digits()
    truth = np.array([[[1, 2], [0, 3]], [[2, 2], [1, 1]], [[3, 0], [0, 1]]], dtype=np.uint8)
    codes = tok.encode_frames(truth[:, None]).ids[:, 0]  # (3, 1)
    decoded = truth.copy()
    decoded[0, 1, 1] = 0  # pixel 3 wrong; the decoder's second colour for it is the true one
    decoded[2, 0, 0] = 2  # wrong, and the true colour is not among the decoder's first two
    logps = {
        0: _log_probs([1, 2, 0, 0], [0, 0, 1, 3], [5.0, 0.5, 4.0, 1.0]),  # pixel 1 the least sure, then pixel 3
        2: _log_probs([2, 0, 0, 1], [1, 1, 1, 0], [0.2, 3.0, 3.0, 3.0]),
    }
    monkeypatch.setattr(frame_search, "_pixel_log_probs", lambda _, c: np.stack([logps[i] for i in (0, 2)]))
    out = frame_search.search_frames(tok, codes, decoded, pixels=2)
    assert np.array_equal(out[0], truth[0])  # found: pixel 3 at its second colour (pixel 1 kept)
    assert np.array_equal(out[1], decoded[1])  # it encoded back: untouched
    assert np.array_equal(out[2], decoded[2])  # no candidate encodes back: kept as decoded
    monkeypatch.setattr(frame_search, "_pixel_log_probs", lambda _, c: logps[0][None])
    one = frame_search.search_frames(tok, codes[:1], decoded[:1], pixels=1)  # pixel 1 alone: no candidate passes
    assert np.array_equal(one[0], decoded[0])


def test_of_candidates_that_encode_back_the_most_likely_is_kept(monkeypatch):
    class _Blind(_Digits):  # codes that do not see pixel 1: flipping it or not, a candidate encodes back alike
        def encode_frames(self, videos):
            seen = videos.copy()
            seen[..., 0, 1] = 0
            return super().encode_frames(seen)

    tok = _Blind()
    truth = np.array([[[1, 2], [0, 3]]], dtype=np.uint8)
    decoded = truth.copy()
    decoded[0, 1, 1] = 0
    logp = _log_probs([1, 2, 0, 0], [0, 0, 1, 3], [5.0, 0.5, 4.0, 1.0])
    monkeypatch.setattr(frame_search, "_pixel_log_probs", lambda _, c: logp[None])
    out = frame_search.search_frames(tok, tok.encode_frames(truth[:, None]).ids[:, 0], decoded, pixels=2)
    assert np.array_equal(out[0], truth[0])  # pixel 3 changed, pixel 1 (both pass) kept at its likelier colour


def test_decode_frames_searches_by_the_runs_setting_and_keeps_frames_that_encode_back(video_run):  # noqa: F811
    from hiertok.data.video import VideoWorld

    from .test_video_tokenizer import WORLD

    tok = IdeaTokenizer.from_pretrained(video_run)
    codes = tok.encode_frames(VideoWorld(WORLD).generate(2, seed=3))
    plain = tok.decode_frames(codes, search_pixels=0)
    searched = tok.decode_frames(codes, search_pixels=3)
    assert searched.shape == plain.shape and searched.dtype == np.uint8
    back = (tok.encode_frames(plain).ids == codes.ids).all(-1)  # (B, T) frames that already encode back
    assert np.array_equal(searched[back.numpy()], plain[back.numpy()])
    changed = ~(searched == plain).all((-2, -1))
    assert (tok.encode_frames(searched).ids == codes.ids).all(-1)[torch.as_tensor(changed)].all()  # a change passes
    tok.cfg.generation.search_pixels = 3
    assert np.array_equal(tok.decode_frames(codes), searched)
    for bad in (-1, 17):
        with pytest.raises(UserError, match="search_pixels must be in 0..16"):
            tok.decode_frames(codes, search_pixels=bad)


def test_search_pixels_on_a_text_run_is_a_one_line_error(toy_run):
    from hiertok.config import load_config
    from hiertok.data.bpe import BPE
    from hiertok.tokenizer import TokenizerConfig

    cfg = load_config(TokenizerConfig, None, ["generation.search_pixels=4"])
    with pytest.raises(UserError, match="trained on text"):
        IdeaTokenizer(cfg, BPE.load(toy_run / "tokenizer.json"))


def test_a_planners_frames_are_decoded_unchecked(video_planner, monkeypatch):  # noqa: F811
    """A planner's fine codes are often a little off: searching for a frame that encodes back to them made right
    frames wrong, so rollouts never search, whatever the run's setting."""
    import hiertok.tokenizer
    from hiertok.data.video import VideoWorld
    from hiertok.pipeline import Pipeline
    from hiertok.rollout import rollout

    from .test_video_tokenizer import WORLD

    pipe = Pipeline.from_pretrained(video_planner)
    pipe.tokenizer.cfg.generation.search_pixels = 3

    def refuse(*_):
        raise AssertionError("a planned frame was searched")

    monkeypatch.setattr(hiertok.tokenizer, "search_frames", refuse)
    out = rollout(pipe, VideoWorld(WORLD).generate(2, seed=1)[:, :3], steps=2)
    assert out.shape == (2, 5, 8, 8)
