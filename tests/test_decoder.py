"""Decoder generation: cached == uncached, beam 1 == greedy, beam scores are real log-probabilities."""

import pytest
import torch

from decoder.generate import GenerationConfig, generate
from decoder.model import Condition, DecoderConfig, IdeaDecoder, SpecialIds
from decoder.story_context import TEXT
from hiertok.errors import UserError
from hiertok.sampling import filter_logits

SPECIAL = SpecialIds(pad=0, bos=1, eos=2)


@pytest.fixture(scope="module")
def decoder() -> IdeaDecoder:
    torch.manual_seed(0)
    return IdeaDecoder(DecoderConfig(dim=32, depth=2, heads=2), vocab_size=40, cond_dim=8, special=SPECIAL).eval()


def uncached_greedy(d: IdeaDecoder, prefix: Condition, max_tokens: int) -> list[list[int]]:
    tokens = torch.full((len(prefix), 1), SPECIAL.bos)
    for _ in range(max_tokens):
        logits, _ = d(tokens, prefix)
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], 1)
    out = []
    for row in tokens[:, 1:].tolist():
        out.append(row[: row.index(SPECIAL.eos)] if SPECIAL.eos in row else row)
    return out


@torch.no_grad()
def sequence_logprob(d: IdeaDecoder, prefix: Condition, ids: list[int]) -> float:
    """Log-probability of `ids` + EOS under one fresh forward pass (no cache)."""
    inp = torch.tensor([[SPECIAL.bos] + ids])
    target = ids + [SPECIAL.eos]
    logits, _ = d(inp, prefix)
    logp = logits[0].float().log_softmax(-1)
    return float(sum(logp[i, t] for i, t in enumerate(target)))


def test_cached_greedy_equals_uncached(decoder):
    prefix = decoder.condition(torch.randn(4, 8))
    cfg = GenerationConfig(max_tokens=12)
    out = generate(decoder, prefix, cfg)
    assert out.tokens == uncached_greedy(decoder, prefix, 12)
    for i, ids in enumerate(out.tokens):
        assert out.logprobs[i].item() == pytest.approx(
            sequence_logprob(decoder, prefix.rows(torch.tensor([i])), ids), abs=1e-4
        )


def test_rows_that_finish_early_leave_the_batch_without_changing_the_others():
    """Greedy decoding drops finished rows from the batch (and their cache); the result must not change."""
    torch.manual_seed(1)
    d = IdeaDecoder(DecoderConfig(dim=32, depth=2, heads=2), vocab_size=40, cond_dim=8, special=SPECIAL).eval()
    head = torch.nn.Linear(32, 40)
    with torch.no_grad():
        head.weight.copy_(d.net.to_logits.weight * 4)
        head.bias.zero_()
        head.bias[SPECIAL.eos] = 1.5  # EOS is often, but not always, the argmax: rows end at different steps
    d.net.to_logits = head
    prefix = d.condition(torch.randn(24, 8))
    out = generate(d, prefix, GenerationConfig(max_tokens=12))
    lengths = {len(t) for t in out.tokens}
    assert len(lengths) >= 3, lengths  # the test needs rows of several lengths
    assert out.tokens == uncached_greedy(d, prefix, 12)
    for i, ids in enumerate(out.tokens):
        assert out.logprobs[i].item() == pytest.approx(
            sequence_logprob(d, prefix.rows(torch.tensor([i])), ids), abs=1e-4
        )


def test_beam_one_is_greedy(decoder):
    prefix = decoder.condition(torch.randn(3, 8))
    greedy = generate(decoder, prefix, GenerationConfig(max_tokens=10))
    beam = generate(decoder, prefix, GenerationConfig(max_tokens=10, num_beams=1))
    assert greedy.tokens == beam.tokens


def test_beam_score_is_the_sequence_logprob(decoder):
    prefix = decoder.condition(torch.randn(3, 8))
    cfg = GenerationConfig(max_tokens=8, num_beams=4, length_penalty=0.0)
    beam = generate(decoder, prefix, cfg)
    for i, ids in enumerate(beam.tokens):
        expected = sequence_logprob(decoder, prefix.rows(torch.tensor([i])), ids)
        assert beam.logprobs[i].item() == pytest.approx(expected, abs=1e-4)


def test_sampling_is_seeded_and_filters(decoder):
    prefix = decoder.condition(torch.randn(2, 8))
    cfg = GenerationConfig(max_tokens=6, temperature=1.0, top_p=0.9)
    a = generate(decoder, prefix, cfg, generator=torch.Generator().manual_seed(1)).tokens
    b = generate(decoder, prefix, cfg, generator=torch.Generator().manual_seed(1)).tokens
    assert a == b
    logits = torch.tensor([[3.0, 2.0, 1.0, -5.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    kept = ~torch.isinf(filter_logits(logits, top_p=0.8))
    assert kept.tolist() == [[True, True, False, False]]


def test_teacher_forcing_layout(decoder):
    tokens = torch.tensor([[5, 6, 7], [8, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    inp, target, tmask = decoder.teacher_forcing(tokens, mask)
    assert inp.tolist() == [[1, 5, 6, 7], [1, 8, 0, 0]]
    assert target.tolist() == [[5, 6, 7, 2], [8, 2, 0, 0]]
    assert tmask.tolist() == [[True] * 4, [True, True, False, False]]


def _story_condition(d: IdeaDecoder, b: int) -> Condition:
    """Rows with 2 earlier ideas each: some by their tokens, some absent."""
    kinds = torch.tensor([[TEXT, TEXT], [TEXT, 0], [0, 0]] * b)[:b]
    tokens = torch.randint(3, 40, (b, 2, 5))
    mask = torch.ones(b, 2, 5, dtype=torch.bool)
    mask[:, 1, 3:] = False
    return d.condition(torch.randn(b, 8), kinds, tokens, mask)


@pytest.mark.parametrize("copy,layers", [(False, 0), (True, 0), (True, 1)])
def test_story_context_decodes_cached_as_uncached_and_scores_are_logprobs(copy, layers):
    torch.manual_seed(2)
    cfg = DecoderConfig(dim=32, depth=2, heads=2, context=2, copy=copy, context_layers=layers)
    d = IdeaDecoder(cfg, vocab_size=40, cond_dim=8, special=SPECIAL).eval()
    cond = _story_condition(d, 6)
    assert cond.context.shape[:2] == cond.context_mask.shape and cond.context_mask[2].sum() == 0
    out = generate(d, cond, GenerationConfig(max_tokens=10))
    assert out.tokens == uncached_greedy(d, cond, 10)
    beam = generate(d, cond, GenerationConfig(max_tokens=8, num_beams=3, length_penalty=0.0))
    for i, ids in enumerate(beam.tokens):
        expected = sequence_logprob(d, cond.rows(torch.tensor([i])), ids)
        assert beam.logprobs[i].item() == pytest.approx(expected, abs=1e-4)
    # The context is read: other earlier tokens give other logits.
    other = Condition(cond.prefix, cond.context.roll(1, dims=1), cond.context_mask, cond.context_ids)
    inp = torch.full((6, 1), SPECIAL.bos)
    assert not torch.allclose(d(inp, cond)[0][:2], d(inp, other)[0][:2])


def test_context_layers_let_a_context_token_read_its_sentence_and_keep_empty_rows_empty():
    """With `context_layers`, a context position's vector depends on the row's other context tokens (a name
    after "friend named" is not a name after "the hero"); without, on its own token alone. A row with no
    context gets zeros, not NaNs, and its gradients stay finite."""
    for layers in (0, 1):
        torch.manual_seed(4)
        cfg = DecoderConfig(dim=32, depth=2, heads=2, context=2, copy=True, context_layers=layers)
        d = IdeaDecoder(cfg, vocab_size=40, cond_dim=8, special=SPECIAL)
        torch.manual_seed(5)
        cond = _story_condition(d, 3)
        torch.manual_seed(5)
        kinds = torch.tensor([[TEXT, TEXT], [TEXT, 0], [0, 0]])
        tokens = torch.randint(3, 40, (3, 2, 5))
        tokens[0, 0, 1] = 3 if tokens[0, 0, 1] != 3 else 4  # one other token in row 0's nearest idea
        mask = torch.ones(3, 2, 5, dtype=torch.bool)
        mask[:, 1, 3:] = False
        changed = d.condition(torch.randn(3, 8), kinds, tokens, mask)
        first = cond.context[0, 0]  # row 0's first context token, itself unchanged
        assert torch.allclose(first, changed.context[0, 0]) == (layers == 0)
        assert torch.isfinite(cond.context).all()
        alone = d.condition(torch.randn(1, 8), kinds[1:2], tokens[1:2], mask[1:2])  # row 1 without row 0's padding
        real = cond.context_mask[1]
        assert alone.context.shape[1] < cond.context.shape[1]
        assert torch.allclose(alone.context[0], cond.context[1][real], atol=1e-5)  # padding is never read
        assert not cond.context[2].any() or layers == 0  # without layers padding is masked, not zeroed
        inp = torch.full((3, 4), SPECIAL.bos)
        d.score(inp, cond, inp).log_prob.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in d.parameters() if p.grad is not None)
    with pytest.raises(UserError, match="context_layers"):
        DecoderConfig(context=0, context_layers=1).validate()
    with pytest.raises(UserError, match="context_layers"):
        DecoderConfig(context=2, context_layers=-1).validate()


def test_copying_puts_mass_on_the_context_tokens_only_and_stays_a_distribution():
    torch.manual_seed(3)
    d = IdeaDecoder(DecoderConfig(dim=32, depth=2, heads=2, context=2, copy=True), 40, 8, SPECIAL).eval()
    cond = _story_condition(d, 3)  # row 2 has no context
    with torch.no_grad():
        d.copy.gate.bias.fill_(20.0)  # the gate copies wherever it can
        logp, _ = d(torch.full((3, 1), SPECIAL.bos), cond)
    probs = logp[:, 0].exp()
    assert probs.sum(-1).tolist() == pytest.approx([1.0] * 3, abs=1e-5)
    for row in (0, 1):
        seen = set(cond.context_ids[row][cond.context_ids[row] >= 0].tolist())
        assert probs[row, sorted(seen)].sum() > 0.999  # copied tokens only
    # Nothing to copy: the vocabulary distribution alone, as without the copy head.
    vocab = d.net.to_logits(
        d.net(
            torch.full((3, 1), SPECIAL.bos),
            prepend_embeds=cond.prefix,
            context=cond.context,
            context_mask=cond.context_mask,
            return_embeddings=True,
        )[:, 1:]
    )
    assert torch.allclose(logp[2, 0], vocab[2, 0].log_softmax(-1), atol=1e-5)
    assert cond.context_ids[1, cond.context_mask[1]].ge(0).all() and cond.context_ids[2].eq(-1).all()


@pytest.mark.parametrize("copy", [False, True])
@pytest.mark.parametrize("gate", [-3.0, 0.0, 3.0])
def test_scores_equal_the_full_distribution_with_and_without_copying(copy, gate):
    """`score` skips the (B, T, V) copy mixture: its log p(target), argmax and gradients are the full one's."""
    torch.manual_seed(4)
    d = IdeaDecoder(DecoderConfig(dim=32, depth=2, heads=2, context=2, copy=copy), 40, 8, SPECIAL)
    if copy:
        with torch.no_grad():
            d.copy.gate.bias.fill_(gate)
    cond = _story_condition(d, 6)  # row 2 has no context
    inp = torch.cat([torch.full((6, 1), SPECIAL.bos), torch.randint(3, 40, (6, 7))], 1)
    target = torch.cat([inp[:, 1:], torch.full((6, 1), SPECIAL.eos)], 1)
    target[:3, :4] = cond.context_ids[:3, :4].clamp(min=3)  # targets the context holds (or not, at padding)
    full, _ = d(inp, cond)
    expected = full.float().log_softmax(-1).gather(-1, target[..., None])[..., 0]
    scored = d.score(inp, cond, target, full=True)
    assert torch.allclose(scored.log_prob, expected, atol=1e-5)
    assert torch.equal(scored.predicted, full.argmax(-1))
    assert torch.allclose(scored.logits, full)
    copied = (scored.predicted[:2, :, None] == cond.context_ids[:2, None, :]).any(-1)  # (2, T)
    if copy and gate > 0:  # a gate that copies: the argmax is a context token (the mixture's, not the vocabulary's)
        assert copied.float().mean() > 0.5
    grads = []
    for loss in (-expected.sum(), -d.score(inp, cond, target).log_prob.sum()):
        d.zero_grad()
        loss.backward(retain_graph=True)
        grads.append(torch.cat([p.grad.flatten() for p in d.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_the_pointer_mass_is_the_copy_attention_on_the_target_and_trains_behind_a_closed_gate():
    """`pointer_log_mass` is log sum of the copy attention over the context positions holding the target (-inf where
    none does), and its gradient reaches the pointer where the mixture's does not: behind a shut gate."""
    torch.manual_seed(5)
    d = IdeaDecoder(DecoderConfig(dim=32, depth=2, heads=2, context=2, copy=True), 40, 8, SPECIAL)
    with torch.no_grad():
        d.copy.gate.bias.fill_(-30.0)  # the gate is shut: the mixture is the vocabulary's alone
    cond = _story_condition(d, 6)  # rows 2 and 5 have no context
    inp = torch.cat([torch.full((6, 1), SPECIAL.bos), torch.randint(3, 40, (6, 5))], 1)
    target = torch.cat([inp[:, 1:], torch.full((6, 1), SPECIAL.eos)], 1)
    target[:, :3] = cond.context_ids[:, :3].clamp(min=3)  # targets the context holds (rows with a context)
    scored = d.score(inp, cond, target)
    hidden, _ = d._hidden(inp, cond, None)
    log_attn, _, _ = d.copy._parts(hidden, cond.context, cond.context_ids)
    held = cond.context_ids[:, None, :] == target[..., None]
    assert torch.equal(scored.pointer_log_mass.isfinite(), held.any(-1))
    assert not held[2].any() and held[0, :3].any(-1).all()
    finite = held.any(-1)
    mass = (log_attn.exp() * held).sum(-1)
    assert torch.allclose(scored.pointer_log_mass[finite].exp(), mass[finite], atol=1e-6)
    for loss, reaches in ((-scored.log_prob.sum(), False), (-scored.pointer_log_mass[finite].sum(), True)):
        d.zero_grad()
        loss.backward(retain_graph=True)
        grad = d.copy.query.weight.grad
        assert (grad is not None and grad.abs().sum() > 1e-4) == reaches
        assert all(p.grad is None or p.grad.isfinite().all() for p in d.parameters())


def test_dim_head_sets_the_attention_width_and_the_cache_still_holds():
    """`dim_head` is the width of one head: heads x dim_head is the inner width of self- and cross-attention."""
    torch.manual_seed(2)
    cfg = DecoderConfig(dim=32, depth=1, heads=2, dim_head=8, context=2)
    d = IdeaDecoder(cfg, vocab_size=40, cond_dim=8, special=SPECIAL).eval()
    widths = {m.weight.shape[0] for name, m in d.net.attn_layers.named_modules() if name.endswith("to_q")}
    assert widths == {2 * 8}
    prefix = d.condition(torch.randn(3, 8))
    assert generate(d, prefix, GenerationConfig(max_tokens=6)).tokens == uncached_greedy(d, prefix, 6)


def test_a_state_starts_as_nothing_and_then_moves_the_prefix():
    """`state_dim`: a decoder fine-tuned to read a state starts as the one it was (its state weights are zero);
    once trained, each row's prefix is its code's plus its own state's projection."""
    torch.manual_seed(2)
    d = IdeaDecoder(DecoderConfig(dim=32, depth=1, heads=2, state_dim=6), vocab_size=40, cond_dim=8, special=SPECIAL)
    codes, states = torch.randn(3, 8), torch.randn(3, 6)
    assert torch.equal(d.condition(codes, state=states).prefix, d.condition(codes).prefix)
    with torch.no_grad():
        d.to_state.weight.normal_()
    moved = d.condition(codes, state=states).prefix
    expected = d.condition(codes).prefix + d.to_state(states)[:, None]
    assert torch.allclose(moved, expected)
    swapped = d.condition(codes, state=states.flip(0)).prefix  # another row's state: another prefix
    assert not torch.allclose(swapped, moved)
    assert torch.allclose(swapped[1], moved[1])  # the middle row kept its own


def test_input_dropout_hides_earlier_tokens_in_training_only():
    """Word dropout sets about the asked fraction of teacher-forced inputs to PAD, never BOS, and only while the
    autoencoder trains (its evaluation and the codelength read the true tokens)."""
    from hiertok.autoencoder import IdeaAutoencoder, ModelConfig
    from hiertok.data.ideas import IdeaBatch
    from hiertok.encoder import EncoderConfig
    from hiertok.quantize import QuantizerConfig

    torch.manual_seed(0)
    d = IdeaDecoder(DecoderConfig(dim=32, depth=1, heads=2, input_dropout=0.3), 40, 8, SPECIAL)
    inp = torch.cat([torch.full((200, 1), SPECIAL.bos), torch.randint(3, 40, (200, 50))], 1)
    dropped = d.drop_inputs(inp)
    assert (dropped[:, 0] == SPECIAL.bos).all()
    hidden = dropped[:, 1:] == SPECIAL.pad
    kept = dropped != SPECIAL.pad
    assert 0.27 < hidden.float().mean() < 0.33 and torch.equal(dropped[kept], inp[kept])  # the rest untouched
    assert torch.equal(IdeaDecoder(DecoderConfig(dim=32, depth=1, heads=2), 40, 8, SPECIAL).drop_inputs(inp), inp)
    with pytest.raises(ValueError, match="input_dropout"):
        DecoderConfig(input_dropout=1.0).validate()
    cfg = ModelConfig(
        encoder=EncoderConfig(dim=32, depth=1),
        quantizer=QuantizerConfig(levels=2, codebook_sizes=[16, 64]),
        decoder=DecoderConfig(dim=32, depth=1, max_len=16, input_dropout=0.9),
    )
    model = IdeaAutoencoder(cfg, vocab_size=40, special=SPECIAL)
    tokens = torch.randint(3, 40, (6, 8))
    batch = IdeaBatch(
        tokens,
        torch.ones(6, 8, dtype=torch.bool),
        torch.arange(6),
        torch.full((6, 0), -1),
        torch.full((6, 0), -1),
        torch.arange(6),
    )
    seen = []
    model.decoder.score = lambda inp, *a, **k: seen.append(inp) or IdeaDecoder.score(model.decoder, inp, *a, **k)
    model.eval()(batch)
    model.train()(batch)
    assert not (seen[0][:, 1:] == SPECIAL.pad).any() and (seen[1][:, 1:] == SPECIAL.pad).float().mean() > 0.5


def test_code_every_token_reaches_every_input_and_the_cache_still_holds():
    """`code_every_token` adds the prefix (the code) to every token's input embedding: the outputs differ from the
    same weights without it, and cached decoding still gives what uncached decoding gives."""
    torch.manual_seed(3)
    every = IdeaDecoder(DecoderConfig(dim=32, depth=2, heads=2, code_every_token=True), 40, 8, SPECIAL).eval()
    plain = IdeaDecoder(DecoderConfig(dim=32, depth=2, heads=2), 40, 8, SPECIAL).eval()
    plain.load_state_dict(every.state_dict())  # the knob adds no weights
    cond = every.condition(torch.randn(4, 8) * 3)
    tokens = torch.tensor([[SPECIAL.bos, 5, 6, 7]] * 4)
    with torch.no_grad():
        assert not torch.allclose(every(tokens, cond)[0], plain(tokens, cond)[0], atol=1e-3)
        out = generate(every, cond, GenerationConfig(max_tokens=12))
        assert out.tokens == uncached_greedy(every, cond, 12)


@pytest.mark.parametrize("patch", [1, 3])
def test_a_parallel_decoder_writes_every_token_from_the_code_alone_in_one_pass(patch: int):
    """`parallel`: the teacher-forced inputs after BOS are PAD, so no position reads the tokens before it; decoding
    is one forward pass whose per-position argmax, cut at the first EOS, is what the teacher-forced scores predict,
    with their log-probability; a budget-long idea ends at the last position; beams decode greedily. With `patch`,
    3 tokens come from each position (11 inputs: 4 positions, the last one's extra tokens cut)."""
    torch.manual_seed(4)
    cfg = DecoderConfig(dim=32, depth=2, heads=2, parallel=True, abs_positions=True, patch=patch)
    d = IdeaDecoder(cfg, 40, 8, SPECIAL).eval()
    inp, target, _ = d.teacher_forcing(torch.tensor([[5, 6, 7], [8, 0, 0]]), torch.tensor([[1, 1, 1], [1, 0, 0]]) > 0)
    assert inp.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0]] and target.tolist() == [[5, 6, 7, 2], [8, 2, 0, 0]]
    with torch.no_grad():  # positions far apart and EOS often the argmax: ideas of several lengths, 10 the budget
        d.net.pos_emb.emb.weight.normal_(0, 1.0)
        d.net.to_logits.weight.mul_(4)
        d.net.to_logits.bias = torch.nn.Parameter(torch.zeros(40))
        d.net.to_logits.bias[SPECIAL.eos] = 1.0
        d.net.to_logits.bias[SPECIAL.pad] = -1e4  # trained decoders never write PAD; the check reads it as padding
    cond = d.condition(torch.randn(32, 8) * 3)
    budget = 10
    out = generate(d, cond, GenerationConfig(max_tokens=budget))
    assert len({len(t) for t in out.tokens}) >= 3, [len(t) for t in out.tokens]
    for i, ids in enumerate(out.tokens):
        tokens = torch.tensor([ids + [SPECIAL.pad] * (budget - len(ids))])
        inp, target, tmask = d.teacher_forcing(tokens, tokens != SPECIAL.pad)
        with torch.no_grad():
            scored = d.score(inp, cond.rows(torch.tensor([i])), target)
        n = len(ids) + 1  # the tokens and the EOS after them
        if len(ids) < budget:  # a budget-long idea's EOS is forced, not predicted
            assert scored.predicted[0, :n].tolist() == target[0, :n].tolist()
        assert out.logprobs[i].item() == pytest.approx(float(scored.log_prob[0, :n].sum()), abs=1e-4)
    assert generate(d, cond, GenerationConfig(max_tokens=budget, num_beams=4)).tokens == out.tokens
    sampling = GenerationConfig(max_tokens=budget, temperature=1.0)
    a = generate(d, cond, sampling, generator=torch.Generator().manual_seed(1)).tokens
    assert a == generate(d, cond, sampling, generator=torch.Generator().manual_seed(1)).tokens and a != out.tokens
    with pytest.raises(ValueError, match="input_dropout"):
        DecoderConfig(parallel=True, input_dropout=0.1).validate()
    assert d.net.pos_emb.emb.weight.shape[0] == -(-(cfg.max_len + 1) // patch)  # 129 tokens in positions


@pytest.mark.parametrize(
    "cfg, message",
    [
        (DecoderConfig(patch=2), "needs model.decoder.parallel"),
        (DecoderConfig(patch=0, parallel=True), "patch must be >= 1"),
        (DecoderConfig(patch=4, parallel=True, abs_positions=True, raster_width=6), "multiple of patch"),
    ],
)
def test_decoder_patches_that_cannot_work_are_one_line_errors(cfg: DecoderConfig, message: str):
    with pytest.raises(UserError, match=message):
        cfg.validate()
