"""The idea-learning losses compute what their formulas say, and the autoencoder wires them as configured."""

import math

import numpy as np
import pytest
import torch

from decoder.model import DecoderConfig, SpecialIds
from decoder.story_context import ABSENT, CODES, TEXT
from hiertok.autoencoder import IdeaAutoencoder, LossConfig, ModelConfig, validate_losses
from hiertok.data.ideas import IdeaCollator, IdeaCorpus
from hiertok.encoder import EncoderConfig, IdeaEncoder
from hiertok.idea_losses import NextIdeaPredictor, ParallelTokens, info_nce, infonce_uniformity, total_coding_rate
from hiertok.quantize import QuantizerConfig


def test_info_nce_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    k = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # norms do not matter: cosine similarities
    # query 0: sims (1, 0, -1), positive 0; query 1: sims (0, 1, 0), positive 2
    want0 = -math.log(math.exp(1 / 0.5) / (math.exp(2) + 1 + math.exp(-2)))
    want1 = -math.log(1 / (1 + math.exp(2) + 1))
    got = info_nce(q, k, torch.tensor([0, 2]), tau=0.5)
    assert got.item() == pytest.approx((want0 + want1) / 2, rel=1e-6)


def test_total_coding_rate_by_hand():
    # Orthonormal rows, B = d = 2, eps = 1: det(I + 2/2 * I) = 4, R = log 2.
    assert total_coding_rate(torch.eye(2) * 5, eps=1.0).item() == pytest.approx(math.log(2), rel=1e-6)
    # Both rows the same direction: Z^T Z = diag(2, 0), det = 3, R = log(3) / 2: collapse has a lower rate.
    same = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    assert total_coding_rate(same, eps=1.0).item() == pytest.approx(math.log(3) / 2, rel=1e-6)


def test_infonce_uniformity_by_hand():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 4.0]])  # cos: s12 = -1, s13 = s23 = 0
    want = (2 * math.log((math.exp(-1) + 1) / 2) + math.log((1 + 1) / 2)) / 3
    assert infonce_uniformity(z, tau=1.0).item() == pytest.approx(want, rel=1e-6)
    assert infonce_uniformity(torch.ones(4, 3), tau=0.1).item() == pytest.approx(10.0, rel=1e-5)  # collapsed: 1/tau


def test_next_idea_predictor_uses_the_absent_vector_for_missing_ideas():
    torch.manual_seed(0)
    head = NextIdeaPredictor(dim_in=4, context=2, dim_out=3)
    prev = torch.randn(2, 2, 4)
    present = torch.tensor([[True, False], [True, False]])
    other = prev.clone()
    other[:, 1] = 100.0  # values of absent ideas must not matter
    assert torch.equal(head(prev, present), head(other, present))
    assert not torch.equal(head(prev, torch.ones(2, 2, dtype=torch.bool)), head(prev, present))


def test_soft_one_hot_embeddings_encode_like_the_tokens():
    torch.manual_seed(0)
    enc = IdeaEncoder(EncoderConfig(dim=32, depth=1), vocab_size=50, max_len=16, idea_dim=8)
    tokens = torch.randint(0, 50, (3, 6))
    mask = torch.arange(6)[None] < torch.tensor([[6], [4], [1]])
    soft = torch.nn.functional.one_hot(tokens, 50).float() @ enc.token_embedding.weight
    assert torch.allclose(enc(tokens, mask, soft_embeddings=soft), enc(tokens, mask), atol=1e-6)


def _model_and_batch(loss: LossConfig):
    torch.manual_seed(0)
    cfg = ModelConfig(
        encoder=EncoderConfig(dim=32, depth=1),
        quantizer=QuantizerConfig(levels=4, codebook_sizes=[64, 256], level_dropout=0.0),
        decoder=DecoderConfig(dim=32, depth=1, max_len=16),
        loss=loss,
    )
    model = IdeaAutoencoder(cfg, vocab_size=40, special=SpecialIds(pad=0, bos=1, eos=2))
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 7, size=12)
    tokens = rng.integers(3, 40, size=int(lengths.sum())).astype(np.int32)
    corpus = IdeaCorpus(tokens, np.concatenate([[0], np.cumsum(lengths)]), np.array([0, 5, 9, 12]), None)
    batch = IdeaCollator(corpus, 0, previous=loss.context)([0, 3, 5, 6, 9, 11])
    return model, batch


def test_autoencoder_adds_each_term_with_its_weight_and_next_idea_is_info_nce_of_its_heads():
    loss = LossConfig(
        next_idea_weight=0.3, next_idea_levels=1, reencode_weight=0.2, uniformity_weight=0.1, next_mse_weight=0.5
    )
    model, batch = _model_and_batch(loss)
    model.eval()
    out = model(batch)
    t = out.terms
    assert set(t) == {"next_idea", "reencode", "uniformity", "next_mse"}
    want = (
        out.recon + out.aux + 0.3 * t["next_idea"] + 0.2 * t["reencode"] - 0.1 * t["uniformity"] + 0.5 * t["next_mse"]
    )
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-5)
    # Recompute the next-idea term: only targets with a previous idea; the positive is the target's own row.
    z = model.encoder(batch.tokens, batch.mask).float()
    has = batch.previous[:, 0] >= 0
    assert has.tolist() == [False, True, False, True, False, True]  # ideas 0, 5 and 9 start documents
    pred = model.next_idea_head(z[batch.previous.clamp(min=0)], batch.previous >= 0)[has]
    keys = model.next_idea_keys(z[:, :3])  # level 1 of FSQ 64 = [4, 4, 4]: 3 dims
    manual = info_nce(pred, keys, batch.targets[has], 0.1)
    assert t["next_idea"].item() == pytest.approx(manual.item(), rel=1e-5)
    assert t["uniformity"].item() == pytest.approx(total_coding_rate(z, 0.5).item(), rel=1e-5)


def test_next_mse_trains_only_its_head_and_disabled_terms_build_no_heads():
    model, batch = _model_and_batch(LossConfig(next_mse_weight=1.0))
    assert model.next_idea_head is None and model.bow_head is None
    z = model.encoder(batch.tokens, batch.mask)
    model.idea_terms(z, batch, logits=None, tokens=None, mask=None)["next_mse"].backward()  # re-encoding off: no logits
    assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.next_mse_head.parameters())


@pytest.mark.parametrize(
    "loss, message",
    [
        (LossConfig(next_idea_weight=-1.0), "next_idea_weight"),
        (LossConfig(uniformity="nope"), "uniformity"),
        (LossConfig(next_idea_weight=1.0, context=0), "context"),
        (LossConfig(next_idea_levels=9), "next_idea_levels"),
        (LossConfig(reencode_tau=0.0), "reencode_tau"),
        (LossConfig(parallel_weight=-0.5), "parallel_weight"),
    ],
)
def test_bad_loss_configs_are_one_line_errors(loss, message):
    with pytest.raises(ValueError, match=message):
        validate_losses(loss, levels=4, hierarchy="matryoshka")
    with pytest.raises(ValueError, match="matryoshka"):
        validate_losses(LossConfig(next_idea_weight=1.0, next_idea_levels=1), levels=4, hierarchy="residual")
    validate_losses(LossConfig(next_idea_levels=1), levels=4, hierarchy="residual")  # the term is off: no error


def _context_model(context_dropout: float = 0.0, context_codes: bool = True) -> IdeaAutoencoder:
    torch.manual_seed(0)
    cfg = ModelConfig(
        encoder=EncoderConfig(dim=32, depth=1),
        quantizer=QuantizerConfig(levels=4, codebook_sizes=[64, 256]),
        decoder=DecoderConfig(
            dim=32, depth=1, max_len=16, context=2, context_dropout=context_dropout, context_codes=context_codes
        ),
    )
    return IdeaAutoencoder(cfg, vocab_size=40, special=SpecialIds(pad=0, bos=1, eos=2))


@pytest.mark.parametrize("context_codes", [True, False])
def test_story_context_shows_earlier_ideas_by_tokens_or_cut_codes(context_codes):
    model = _context_model(context_codes=context_codes)
    seen = {}
    model.decoder.condition = lambda own, kinds, tokens, mask, codes, state=None: seen.update(  # what it would read
        own=own, kinds=kinds, tokens=tokens, mask=mask, codes=codes, state=state
    )
    q, dims = model.quantizer, model.quantizer.level_dims
    codes = torch.randn(5, q.dim)
    tokens = torch.arange(5 * 4).reshape(5, 4) + 3
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[3, 2:] = False
    kept = torch.tensor([1, 4, 2, 3, 4])
    targets, context = torch.tensor([0, 2]), torch.tensor([[1, 3], [4, -1]])  # nearest first
    text_known = torch.tensor([[False, True], [True, False]])
    model.decoder_condition(targets, context, codes, tokens, mask, text_known, kept)
    assert torch.equal(seen["own"], codes[[0, 2]])
    by_codes = CODES if context_codes else ABSENT
    assert seen["kinds"].tolist() == [[by_codes, TEXT], [TEXT, ABSENT]]
    # Ideas known by text give their tokens (padded to the longest such idea), nearest first.
    assert torch.equal(seen["tokens"][0, 1, :2], tokens[3, :2]) and seen["mask"][0, 1].tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert torch.equal(seen["tokens"][1, 0], tokens[4])
    if context_codes:  # idea 1 by its codes, cut to the 1 level its target (idea 0) kept
        level1 = dims[0]
        assert torch.equal(seen["codes"][0, 0, :level1], codes[1, :level1])
        assert torch.equal(seen["codes"][0, 0, level1:], q.absent.detach()[level1:])
    else:
        assert seen["codes"] is None


def test_training_context_shows_the_nearest_ideas_by_codes_and_older_ones_by_text():
    model = _context_model()
    context = torch.tensor([[5, 4]] * 600 + [[-1, -1]])
    torch.manual_seed(0)
    rows, text_known = model.sample_context(context)
    assert torch.equal(rows, context)  # no dropout
    seen = {tuple(r) for r in text_known[:600].tolist()}
    # nearest m by codes, m uniform in 0..2: all text, the older one by text, none by text; never the reverse
    assert seen == {(True, True), (False, True), (False, False)}
    assert not text_known[600].any()
    dropped, _ = _context_model(context_dropout=1.0).sample_context(context)
    assert (dropped == -1).all()


def test_rows_encoded_in_length_groups_match_one_padded_batch():
    model, _ = _model_and_batch(LossConfig(context=2))
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 15, size=40)
    tokens = rng.integers(3, 40, size=int(lengths.sum())).astype(np.int32)
    corpus = IdeaCorpus(tokens, np.concatenate([[0], np.cumsum(lengths)]), np.array([0, 17, 40]), None)
    batch = IdeaCollator(corpus, 0, context=2, previous=2)([3, 4, 20, 30, 31])
    assert batch.tokens.shape[0] > 10  # many rows beyond the targets, so several groups
    model.eval()
    grouped = model.encode_rows(batch, group=3)
    assert torch.allclose(grouped, model.encoder(batch.tokens, batch.mask), atol=1e-5)


@pytest.mark.parametrize("context_grad", [True, False])
def test_context_rows_train_the_encoder_only_with_context_grad(context_grad):
    model, batch = _model_and_batch(LossConfig(context=2, context_grad=context_grad))
    z = model.encode_rows(batch)
    context_only = torch.ones(len(z), dtype=torch.bool)
    context_only[batch.targets] = False
    assert context_only.any()
    z[context_only].sum().backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert any(g.abs().sum() > 0 for g in grads) == context_grad


def test_parallel_tokens_score_each_place_from_the_code_alone_and_train_the_encoder():
    """The head's nats are the mean of -log p(token at t | code, t) over real tokens, by hand; in the autoencoder it
    is a term of its own weight, and its gradient reaches the encoder through the quantizer."""
    torch.manual_seed(0)
    head = ParallelTokens(code_dim=4, max_len=5, vocab_size=7, width=8)
    codes, tokens = torch.randn(2, 4), torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    logp = head.out(head.from_code(codes)[:, None] + head.position.weight[None]).log_softmax(-1)
    picked = [logp[b, t, tokens[b, t]] for b in range(2) for t in range(5) if mask[b, t]]
    assert head(codes, tokens, mask).item() == pytest.approx(-torch.stack(picked).mean().item(), rel=1e-5)
    model, batch = _model_and_batch(LossConfig(parallel_weight=0.4))
    model.eval()
    out = model(batch)
    assert set(out.terms) == {"parallel"}
    assert out.loss.item() == pytest.approx((out.recon + out.aux + 0.4 * out.terms["parallel"]).item(), rel=1e-5)
    model.zero_grad()
    tokens, mask = batch.rows(batch.targets)
    z = model.encoder(*batch.rows(batch.targets))
    model.parallel_head(model.quantizer(z).quantized, tokens, mask).backward()
    assert any(p.grad is not None and p.grad.any() for p in model.encoder.parameters())


def test_the_copy_pointer_term_is_the_pointers_nats_on_targets_the_story_holds():
    """With a copy head, `copy_pointer_weight` adds the mean -log mass the pointer puts on each target token that the
    story context holds (only those), at its weight; without one it is a config error, not a silent no-op."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        encoder=EncoderConfig(dim=32, depth=1),
        quantizer=QuantizerConfig(levels=4, codebook_sizes=[64, 256], level_dropout=0.0),
        decoder=DecoderConfig(dim=32, depth=1, max_len=16, context=2, context_dropout=0.0, context_full=1.0, copy=True),
        loss=LossConfig(copy_pointer_weight=0.3),
    )
    model = IdeaAutoencoder(cfg, vocab_size=12, special=SpecialIds(pad=0, bos=1, eos=2)).eval()
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 7, size=12)
    tokens = rng.integers(3, 12, size=int(lengths.sum())).astype(np.int32)  # 9 words: targets repeat the story's
    corpus = IdeaCorpus(tokens, np.concatenate([[0], np.cumsum(lengths)]), np.array([0, 5, 9, 12]), None)
    batch = IdeaCollator(corpus, 0, context=2)([1, 2, 3, 6, 7, 10])  # each has earlier ideas
    out = model(batch)
    assert set(out.terms) == {"copy_pointer"} and out.terms["copy_pointer"] > 0
    assert out.loss.item() == pytest.approx((out.recon + out.aux + 0.3 * out.terms["copy_pointer"]).item(), rel=1e-5)
    # By hand: the decoder's own scores on the same condition (the whole story shown, nothing dropped).
    q = model.quantizer(model.encode_rows(batch))
    known = batch.context >= 0
    cond = model.decoder_condition(batch.targets, batch.context, q.quantized, batch.tokens, batch.mask, known)
    inp, target, tmask = model.decoder.teacher_forcing(*batch.rows(batch.targets))
    pointer = model.decoder.score(inp, cond, target).pointer_log_mass
    held = tmask & pointer.isfinite()
    assert 0 < held.sum() < tmask.sum()
    assert out.terms["copy_pointer"].item() == pytest.approx(-pointer[held].mean().item(), rel=1e-5)
