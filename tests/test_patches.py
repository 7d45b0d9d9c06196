"""Patches (hiertok/patches.py): P tokens a position in the encoder, the same tokens and idea out."""

import pytest
import torch

from hiertok.encoder import EncoderConfig, IdeaEncoder
from hiertok.errors import UserError
from hiertok.patches import PatchEmbed, Unpatch, patch_mask


def test_a_patch_is_real_when_any_of_its_tokens_is():
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0]]) > 0
    assert patch_mask(mask, 3).tolist() == [[True, True, False], [True, False, False]]


def test_patch_embed_reads_every_real_token_and_no_padding():
    torch.manual_seed(0)
    embed = PatchEmbed(dim=4, patch=3)
    x, mask = torch.randn(1, 5, 4), torch.tensor([[1, 1, 1, 1, 0]]) > 0
    out = embed(x, mask)
    assert out.shape == (1, 2, 4)
    padded = x.clone()
    padded[0, 4] += 10.0  # a padding position
    assert torch.equal(embed(padded, mask), out)
    real = x.clone()
    real[0, 3] += 1.0  # the second patch's one real token
    changed = embed(real, mask)
    assert torch.equal(changed[:, 0], out[:, 0]) and not torch.allclose(changed[:, 1], out[:, 1])


def test_unpatch_gives_each_token_of_a_patch_its_own_state():
    torch.manual_seed(0)
    states = Unpatch(dim=4, patch=3)(torch.randn(2, 5, 4))
    assert states.shape == (2, 15, 4)
    assert not torch.allclose(states[:, 0], states[:, 1])


def encoder(patch: int, **kw) -> IdeaEncoder:
    torch.manual_seed(0)
    cfg = EncoderConfig(dim=16, depth=1, heads=2, dim_head=8, patch=patch, **kw)
    return IdeaEncoder(cfg, vocab_size=10, max_len=17, idea_dim=8).eval()


@pytest.mark.parametrize("pool", ["mean", "attention", "flatten"])
def test_a_patched_encoder_reads_every_token_and_ignores_padding(pool: str):
    """Each of 16 token positions moves the idea vector; a padding token does not; soft embeddings of one-hot
    distributions give the tokens' own vector (the re-encoding loss's route)."""
    enc = encoder(4, pool=pool, abs_positions=True, raster_width=16)
    assert enc.net.pos_emb.emb.weight.shape[0] == 5  # ceil(17 / 4) positions
    tokens = torch.randint(3, 10, (1, 16))
    mask = torch.ones(1, 16, dtype=torch.bool)
    with torch.no_grad():
        base = enc(tokens, mask)
        for t in range(16):
            moved = tokens.clone()
            moved[0, t] = 3 + (tokens[0, t] - 2) % 7
            assert not torch.allclose(enc(moved, mask), base, atol=1e-6), t
        short = mask.clone()
        short[0, 14:] = False
        cut = enc(tokens, short)
        junk = tokens.clone()
        junk[0, 14:] = 0
        assert torch.allclose(enc(junk, short), cut, atol=1e-6)
        soft = torch.nn.functional.one_hot(tokens, 10).float() @ enc.token_embedding.weight
        assert torch.allclose(enc(tokens, mask, soft_embeddings=soft), base, atol=1e-5)


def test_encoder_patches_that_cannot_work_are_one_line_errors():
    with pytest.raises(UserError, match="patch must be >= 1"):
        encoder(0)
    with pytest.raises(UserError, match="multiple of patch"):
        encoder(4, abs_positions=True, raster_width=6)
