"""A small CenterNet-style detector that trains from scratch on the CPU in minutes.

A fully convolutional net maps a ``[B, 3, S, S]`` image to, at stride 4, a heatmap per class
(object centres), the log box size and the centre's sub-cell offset. Decoding keeps the local
maxima of each class's heatmap (3x3) as candidates with their scores.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 4


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class CenterNet(nn.Module):
    """Backbone at strides 4/8/16, upsampled and summed back to stride 4, three heads."""

    def __init__(self, n_classes: int, width: int = 32) -> None:
        super().__init__()
        w = width
        self.n_classes = n_classes
        self.stem = nn.Sequential(_block(3, w // 2, 2), _block(w // 2, w, 2))
        self.down8 = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 2 * w))
        self.down16 = nn.Sequential(_block(2 * w, 3 * w, 2), _block(3 * w, 3 * w))
        self.lat8 = nn.Conv2d(2 * w, w, 1)
        self.lat16 = nn.Conv2d(3 * w, w, 1)
        self.fuse = _block(w, w)
        self.heat = nn.Conv2d(w, n_classes, 1)
        self.size = nn.Conv2d(w, 4, 1)  # log w, log h, dx, dy
        self.heat.bias.data.fill_(-2.19)  # sigmoid = 0.1: focal loss starts stable

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c4 = self.stem(x)
        c8 = self.down8(c4)
        c16 = self.down16(c8)
        p8 = self.lat8(c8) + F.interpolate(self.lat16(c16), size=c8.shape[-2:], mode="nearest")
        p4 = c4 + F.interpolate(p8, size=c4.shape[-2:], mode="nearest")
        p4 = self.fuse(p4)
        return self.heat(p4), self.size(p4)


def targets(
    boxes: list[np.ndarray], labels: list[np.ndarray], n_classes: int, side: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training targets of a batch (boxes in input pixels): gaussian heatmaps ``[B, C, H, W]``,
    size/offset targets ``[B, 4, H, W]`` and their mask ``[B, 1, H, W]`` (object centres)."""
    h = w = side // STRIDE
    heat = np.zeros((len(boxes), n_classes, h, w), np.float32)
    reg = np.zeros((len(boxes), 4, h, w), np.float32)
    mask = np.zeros((len(boxes), 1, h, w), np.float32)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for b, (bx, lb) in enumerate(zip(boxes, labels, strict=True)):
        for (x0, y0, x1, y1), c in zip(bx, lb, strict=True):
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            bw, bh = max(1.0, x1 - x0) / STRIDE, max(1.0, y1 - y0) / STRIDE
            ix, iy = min(w - 1, max(0, int(cx))), min(h - 1, max(0, int(cy)))
            sx, sy = max(0.5, bw / 6), max(0.5, bh / 6)
            g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
            heat[b, c] = np.maximum(heat[b, c], g)
            reg[b, :, iy, ix] = (np.log(bw), np.log(bh), cx - ix, cy - iy)
            mask[b, 0, iy, ix] = 1.0
    return torch.from_numpy(heat), torch.from_numpy(reg), torch.from_numpy(mask)


def focal_loss(
    logits: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """CornerNet's penalty-reduced focal loss, normalised by the number of centres;
    ``weight`` (broadcast to the logits) masks out pixels (0) where the target is unsure."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.ge(0.999).float()
    neg = 1.0 - pos
    loss = -(pos * (1 - p) ** 2 * torch.log(p) + neg * (1 - heat) ** 4 * p**2 * torch.log(1 - p))
    if weight is not None:
        loss = loss * weight
        pos = pos * weight
    return loss.sum() / pos.sum().clamp(min=1.0)


def loss(
    model_out: tuple[torch.Tensor, torch.Tensor],
    heat: torch.Tensor,
    reg: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Focal heatmap loss plus L1 on size and offset at the centres."""
    logits, size = model_out
    n = mask.sum().clamp(min=1.0)
    l1 = (F.l1_loss(size, reg, reduction="none") * mask).sum() / n
    return focal_loss(logits, heat, weight) + 0.5 * l1


@torch.no_grad()
def decode(
    model_out: tuple[torch.Tensor, torch.Tensor], *, floor: float = 0.05, top_k: int = 30
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image ``(boxes [N, 4] in input pixels, labels [N], scores [N])``: the local maxima
    of each class's heatmap with a score of at least ``floor``, surest first."""
    logits, size = model_out
    p = torch.sigmoid(logits)
    peaks = (p == F.max_pool2d(p, 3, 1, 1)) & (p >= floor)
    b = p.shape[0]
    out = []
    for i in range(b):
        cls, yy, xx = torch.nonzero(peaks[i], as_tuple=True)
        scores = p[i, cls, yy, xx]
        order = torch.argsort(scores, descending=True)[:top_k]
        cls, yy, xx, scores = cls[order], yy[order], xx[order], scores[order]
        s = size[i, :, yy, xx]
        bw, bh = torch.exp(s[0].clamp(-3, 5)) * STRIDE, torch.exp(s[1].clamp(-3, 5)) * STRIDE
        cx, cy = (xx.float() + s[2]) * STRIDE, (yy.float() + s[3]) * STRIDE
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
        out.append((boxes.cpu().numpy(), cls.cpu().numpy(), scores.cpu().numpy()))
    return out
