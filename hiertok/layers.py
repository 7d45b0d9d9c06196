"""The attention stack every model here uses: x-transformers layers with rotary positions and SDPA attention."""

from __future__ import annotations

import einx
import torch
import x_transformers.continuous
import x_transformers.x_transformers
from torch import Tensor, nn
from x_transformers import Decoder, Encoder

from hiertok.errors import UserError


class _EinxWithMaskedFill:
    """einx, with its `where` for the padding pattern x-transformers uses done as one `masked_fill`.

    x-transformers zeroes the outputs at padded positions with `einx.where("b n, b n d, -> b n d", mask, out, 0.)`,
    and einx 0.4 builds the graph of a call again, through sympy, for every new tensor shape: tens of ms a shape,
    plus setting sympy up on the first. Decoding passes meet a new shape at nearly every forward pass, so this was
    most of a process's first generation (experiments/bench_first_generation.py). Every other einx call (and
    pattern) goes to einx unchanged.
    """

    PATTERN = "b n, b n d, -> b n d"

    def __getattr__(self, name: str):
        return getattr(einx, name)

    def where(self, pattern: str, *args, **kwargs) -> Tensor:
        if pattern == self.PATTERN and len(args) == 3 and not kwargs and isinstance(args[2], int | float):
            mask, values, fill = args
            return values.masked_fill(~mask[..., None], fill)
        return einx.where(pattern, *args, **kwargs)


_EINX = _EinxWithMaskedFill()
for _module in (x_transformers.x_transformers, x_transformers.continuous):
    if getattr(_module, "einx", None) is einx:  # a later x-transformers without it is left alone
        _module.einx = _EINX


def check_stack(dim: int, depth: int, heads: int, dim_head: int, where: str = "a transformer's ") -> None:
    """UserError (one line) for a stack size x-transformers cannot build: it builds width or depth 0 without a
    word, and heads 0 is a ZeroDivisionError. `where` names the config, e.g. "model.encoder." """
    if dim_head < 1:
        raise UserError(f"{where}dim_head (the width of one attention head) must be >= 1, got {dim_head}")
    for name, value in (("dim", dim), ("depth", depth), ("heads", heads)):
        if value < 1:
            raise UserError(f"{where}{name} must be >= 1, got {value}")


def rotary_layers(
    causal: bool,
    dim: int,
    depth: int,
    heads: int,
    dropout: float = 0.0,
    cross_attend: bool = False,
    dim_head: int = 64,
    abs_positions: bool = False,
) -> Decoder | Encoder:
    """A causal (Decoder) or bidirectional (Encoder) stack with rotary positions and flash (SDPA) attention,
    and with `cross_attend` a cross-attention block per layer (called with `context=`, `context_mask=`).

    Rotary positions keep the KV cache valid past max_seq_len; attn_flash runs on CPU too. `dim_head` is the
    width of one head (x-transformers' default, 64; heads x dim_head is the attention's inner width).
    `abs_positions`: let the wrapper add its learned absolute positions too (x-transformers drops them beside
    rotary unless the layers say otherwise); the wrapper must be built with `use_abs_pos_emb=True` as well.
    """
    check_stack(dim, depth, heads, dim_head)
    layers = Decoder if causal else Encoder
    return layers(
        dim=dim,
        depth=depth,
        heads=heads,
        rotary_pos_emb=True,
        attn_flash=True,
        attn_dropout=dropout,
        ff_dropout=dropout,
        cross_attend=cross_attend,
        attn_dim_head=dim_head,
        disable_abs_pos_emb=not abs_positions,
        # Rotary turns half of each head (the library's default), 16 dims at dim_head 32; the library warns below
        # 32, which matters for long language-model contexts, not for ideas of tens of tokens.
        verbose=False,
    )


def raster_positions(table: Tensor, width: int) -> None:
    """Fill a learned absolute-position table (N, D) with 2D sinusoids of a row-major raster `width` wide, in place.

    Position p is the pixel (x, y) = (p % width, p // width); half of the dimensions are sinusoids of x, half of y,
    scaled so that a row has the norm of a random init. Random vectors give a frame's positions no geometry for
    the encoder to pool or the decoder to compare against; these start with pixels near each other alike. The
    table stays learnable.
    """
    n, d = table.shape
    quarter = d // 4
    if quarter == 0:
        raise UserError(f"raster positions need a model at least 4 wide, got {d}")
    pos = torch.arange(n, dtype=torch.float32)
    periods = torch.logspace(1.0, float(torch.log2(torch.tensor(2.0 * width))), quarter, base=2.0)  # 2 .. 2 width
    freq = 2 * torch.pi / periods
    parts = []
    for coord in (pos % width, pos // width):
        angle = coord[:, None] * freq[None]
        parts += [angle.sin(), angle.cos()]
    rows = torch.cat(parts, dim=1)
    rows = torch.nn.functional.pad(rows, (0, d - rows.shape[1]))
    with torch.no_grad():
        table.copy_(rows * (d**0.5 / rows.norm(dim=1, keepdim=True).clamp(min=1e-6)))


def start_raster(net: nn.Module, abs_positions: bool, width: int, where: str) -> None:
    """Start an x-transformers wrapper's learned positions as a raster `width` wide (`raster_positions`); 0: leave
    them. Raises UserError for a width without learned positions."""
    if width < 0 or (width and not abs_positions):
        raise UserError(f"{where}.raster_width needs {where}.abs_positions=true and a width >= 1, got {width}")
    if width:
        raster_positions(net.pos_emb.emb.weight, width)
