"""Fixed views of small images for graph learners: raw pixels and gradient-orientation
histograms (HOG-like). Cheap (well under a second for a few thousand 32 px images), no training,
so votes of the labeled images in them (fast) or graphs over them (precise) are honest for
held-out labels and add a second opinion to a small CNN."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def project(v: torch.Tensor, dims: int = 256) -> torch.Tensor:
    """A fixed (seeded) Gaussian random projection of ``[N, D]`` rows to ``dims`` columns when
    ``D > dims`` (distances kept up to small noise; kNN graphs get cheaper), else ``v``."""
    if v.shape[1] <= dims:
        return v
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(v.shape[1], dims, generator=gen).to(v.device) / math.sqrt(dims)
    return v @ r


BLOCK = 4096
"""Images per block: a view's intermediates (9 orientation planes per pixel) stay small."""


def pixel_view(x: torch.Tensor, dims: int = 256) -> torch.Tensor:
    """Images ``[N, C, H, W]`` flattened and projected to at most ``dims`` columns."""
    if len(x) > BLOCK:
        return torch.cat([pixel_view(x[s : s + BLOCK], dims) for s in range(0, len(x), BLOCK)])
    return project(x.flatten(1).float(), dims)


def gradient_view(
    x: torch.Tensor, *, bins: int = 9, cells: int = 4, dims: int | None = None
) -> torch.Tensor:
    """Histograms of gradient orientation ``[N, 4 * bins * (cells - 1)**2]`` (projected to
    ``dims`` columns when given and smaller).

    Grey-level gradients, unsigned orientation split softly into ``bins``, magnitudes pooled
    into ``cells x cells`` cells, each 2x2 block of cells L2-normalised and clipped at 0.2
    (as HOG's L2-Hys), for images ``[N, C, H, W]``; computed :data:`BLOCK` images at a time.
    """
    if len(x) > BLOCK:
        parts = range(0, len(x), BLOCK)
        kw = {"bins": bins, "cells": cells, "dims": dims}
        return torch.cat([gradient_view(x[s : s + BLOCK], **kw) for s in parts])
    g = x.float().mean(dim=1, keepdim=True)
    g = F.pad(g, (1, 1, 1, 1), mode="replicate")
    gx = (g[..., 1:-1, 2:] - g[..., 1:-1, :-2]) / 2
    gy = (g[..., 2:, 1:-1] - g[..., :-2, 1:-1]) / 2
    mag = torch.sqrt(gx**2 + gy**2)
    pos = torch.remainder(torch.atan2(gy, gx), math.pi) / math.pi * bins
    lo = torch.floor(pos)
    frac = pos - lo
    lo = lo.long() % bins
    hist = torch.zeros(x.shape[0], bins, *x.shape[-2:], dtype=mag.dtype, device=x.device)
    hist.scatter_add_(1, lo, mag * (1 - frac))
    hist.scatter_add_(1, (lo + 1) % bins, mag * frac)
    cellmap = F.adaptive_avg_pool2d(hist, cells)  # [N, bins, cells, cells]
    blocks = cellmap.unfold(2, 2, 1).unfold(3, 2, 1)  # [N, bins, c-1, c-1, 2, 2]
    blocks = blocks.permute(0, 2, 3, 1, 4, 5).flatten(3)  # [N, c-1, c-1, 4*bins]
    blocks = F.normalize(blocks, dim=-1).clamp_max(0.2)
    out = F.normalize(blocks, dim=-1).flatten(1)
    return out if dims is None else project(out, dims)
