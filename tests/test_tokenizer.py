"""The idea tokenizer end to end on a toy run: training, encode/decode, save/load, evaluation."""

import math

import pytest
import torch
import yaml
from safetensors.torch import load_file

from decoder.generate import GenerationConfig
from hiertok.codes import Codes
from hiertok.data.synthetic import StoryWorld
from hiertok.evaluate import evaluate_run, normalized_mutual_information
from hiertok.tokenizer import IdeaTokenizer

from .runs import metrics

STORIES = [s.text for s in StoryWorld().generate(3, seed=777)]


def test_training_loss_falls_and_checkpoints_exist(toy_run):
    records = metrics(toy_run)
    train = [r for r in records if r["split"] == "train"]
    assert train[-1]["loss"] < 0.8 * train[0]["loss"]
    assert [r["step"] for r in records if r["split"] == "eval"] == [20, 40]
    ckpts = sorted(p.name for p in (toy_run / "checkpoints").iterdir())
    assert ckpts == ["step_00000020", "step_00000040"]


def test_final_checkpoint_holds_the_saved_weights(toy_run):
    saved = load_file(toy_run / "model.safetensors")
    ckpt = load_file(toy_run / "checkpoints" / "step_00000040" / "model.safetensors")
    assert saved.keys() == ckpt.keys()
    assert all(torch.equal(saved[k], ckpt[k]) for k in saved)


def test_encode_shapes_and_determinism(toy_run):
    tok = IdeaTokenizer.from_pretrained(toy_run)
    codes = tok.encode(STORIES)
    assert codes.ids.shape[0] == 3 and codes.levels == 4
    assert codes.mask.sum(1).tolist() == [len(s) for s in (tok.split(t) for t in STORIES)]
    for level, size in enumerate(codes.codebook_sizes):
        assert int(codes.flat()[:, level].max()) < size
    assert torch.equal(tok.encode(STORIES).ids, codes.ids)
    assert torch.equal(tok.encode(STORIES[1]).flat(), codes.ids[1][codes.mask[1]])


def test_save_load_gives_identical_codes_and_text(toy_tok, tmp_path):
    toy_tok.save_pretrained(tmp_path / "copy")
    again = IdeaTokenizer.from_pretrained(tmp_path / "copy")
    a, b = toy_tok.encode(STORIES), again.encode(STORIES)
    assert torch.equal(a.ids, b.ids)
    assert toy_tok.decode(a) == again.decode(b)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_prefix_decoding(toy_tok, k):
    codes = toy_tok.encode(STORIES)
    per_idea = toy_tok.decode_ideas(codes, levels=k)
    assert [len(d) for d in per_idea] == codes.mask.sum(1).tolist()
    assert toy_tok.decode(codes.prefix(k)) == toy_tok.decode(codes, levels=k)
    assert toy_tok.decode(codes, levels=k) == ["".join(d) for d in per_idea]


def test_decode_rejects_bad_codes(toy_tok):
    with pytest.raises(ValueError, match="out of range"):
        toy_tok.decode(Codes.from_lists([[[0, 0, 0, 5000]]], toy_tok.codebook_sizes))
    with pytest.raises(ValueError, match="levels"):
        toy_tok.decode(toy_tok.encode(STORIES[0]), levels=5)
    codes = toy_tok.encode(STORIES[0])
    with pytest.raises(TypeError, match="integers"):
        Codes(codes.ids.float(), codes.mask, codes.codebook_sizes)
    with pytest.raises(TypeError, match="bool"):
        Codes(codes.ids, codes.mask.long(), codes.codebook_sizes)


def test_evaluation_keys_and_sanity(toy_run):
    res = evaluate_run(str(toy_run), "synthetic", max_docs=8).to_dict()
    for key in [
        "exact_match_by_prefix",
        "token_accuracy_by_prefix",
        "bits_per_idea_by_prefix",
        "utilization_by_level",
        "bpb_true_codes",
        "bpb_shuffled_codes",
        "event_nmi_level1",
        "exact_match_unseen",
    ]:
        assert res[key] is not None, key
    assert list(res["exact_match_by_prefix"]) == ["1", "2", "3", "4"]
    # Level 1: FSQ 256 -> 240 codes, then 1000 codes a level (the defaults).
    assert res["bits_per_idea_by_prefix"]["4"] == pytest.approx(math.log2(240) + 3 * math.log2(1000), abs=1e-3)
    assert 0 < res["utilization_by_level"]["1"] <= 1
    assert 0 <= res["event_nmi_level1"] <= 1


def test_nmi_on_hand_checkable_cases():
    assert normalized_mutual_information([0, 0, 1, 1], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert normalized_mutual_information([0, 1, 0, 1], ["a", "a", "b", "b"]) == pytest.approx(0.0)
    # H(a) = log 2, H(b) = log 4 (all distinct), I = log 2  ->  NMI = log2 / ((log2 + log4) / 2) = 2/3
    assert normalized_mutual_information([0, 0, 1, 1], ["w", "x", "y", "z"]) == pytest.approx(2 / 3)


# Ideas of at most 16 tokens and a budget to match: a decoder trained 6 steps writes every idea to its budget, and
# what a variant must do (train, evaluate, save, encode, decode) does not depend on the ideas' length.
SHORT_IDEAS = ["data.max_idea_tokens=16", "generation.max_tokens=16"]
# The residual hierarchy has one codebook size and the library's uniform per-batch dropout.
RESIDUAL = ["model.quantizer.hierarchy=residual", "model.quantizer.prefix_dist=uniform"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.quantizer.kind=vq", "model.quantizer.codebook_sizes=[64]"],
        ["model.quantizer.kind=lfq", "model.quantizer.codebook_sizes=[256]"],
        [*RESIDUAL, "model.quantizer.codebook_sizes=[1000]", "model.quantizer.residual_dim=16"],
        ["model.quantizer.kind=vq", *RESIDUAL, "model.quantizer.codebook_sizes=[64]"],
        ["model.decoder.context=2"],
        ["data.segmenter=chunk", "data.chunk_size=6"],
        ["train.mixed_precision=bf16", "train.grad_accum=2"],
        ["model.loss.bow_weight=0.5"],
    ],
)
def test_every_variant_trains_saves_and_decodes(tmp_path, overrides):
    from hiertok.config import load_config
    from hiertok.tokenizer import TokenizerConfig
    from hiertok.train_tokenizer import train

    from .conftest import TOY

    cfg = load_config(
        TokenizerConfig,
        None,
        [*TOY, *SHORT_IDEAS, "train.max_steps=6", "train.eval_every=6", "train.save_every=6", "data.synthetic_docs=120"]
        + overrides,
    )
    result = train(cfg, tmp_path / "run")
    assert result.steps == 6 and "exact_match_k4" in result.last_eval
    tok = IdeaTokenizer.from_pretrained(tmp_path / "run")
    codes = tok.encode(STORIES)
    assert (codes.flat() >= 0).all()
    for level, size in enumerate(tok.codebook_sizes):
        assert int(codes.flat()[:, level].max()) < size
    texts = tok.decode(codes, levels=2)
    assert len(texts) == len(STORIES) and all(isinstance(t, str) for t in texts)
    assert torch.equal(IdeaTokenizer.from_pretrained(tmp_path / "run").encode(STORIES).ids, codes.ids)


def test_tensorboard_tracker_writes_events(tmp_path):
    # tensorboard is in the [test] extra: this test runs under the documented install.
    from hiertok.config import load_config
    from hiertok.tokenizer import TokenizerConfig
    from hiertok.train_tokenizer import train

    from .conftest import TOY

    overrides = [
        "train.max_steps=5",
        "train.log_every=5",
        "train.eval_every=5",
        "train.save_every=5",
        "data.synthetic_docs=120",
        "train.log_with=tensorboard",
    ]
    train(load_config(TokenizerConfig, None, [*TOY, *overrides]), tmp_path / "run")
    assert list((tmp_path / "run" / "logs").rglob("events.out.tfevents*"))
    hparams = [yaml.safe_load(f.read_text()) for f in (tmp_path / "run" / "logs").rglob("hparams.yml")]
    assert hparams and hparams[0]["train.log_with"] == "tensorboard" and hparams[0]["data.synthetic_docs"] == 120


def test_decoding_follows_its_generation_settings_and_refuses_a_bad_prefix(toy_tok):
    codes = toy_tok.encode(STORIES)
    short = toy_tok.decode_to_ids(codes, generation=GenerationConfig(max_tokens=2))
    assert (
        max(len(ids) for doc in short for ids in doc)
        <= 2
        < max(len(i) for d in toy_tok.decode_to_ids(codes) for i in d)
    )
    assert toy_tok.decode_ideas(codes, generation=GenerationConfig(max_tokens=2)) == [
        toy_tok.bpe.decode_batch(doc) for doc in short
    ]
    with pytest.raises(ValueError, match=r"^prefix must be in 1\.\.4, got 5$"):
        codes.prefix(5)
