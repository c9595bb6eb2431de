"""A small CNN trained in the kernel: supervised with augmentation, or FixMatch-style.

Used when no pretrained backbone can be had (offline machines) or when asked for
(``backbone="cnn"``). Images are small (default 32 px); augmentation runs batched on the device.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SmallCNN(nn.Module):
    """Conv net for small images: 3 stages (``width``, 2x, 4x channels), global pooling, linear."""

    def __init__(self, n_out: int, width: int = 24) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(3, w),
            _block(w, w),
            nn.MaxPool2d(2),
            _block(w, 2 * w),
            _block(2 * w, 2 * w),
            nn.MaxPool2d(2),
            _block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.2),
        )
        self.head = nn.Linear(4 * w, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n_out]`` for images ``[B, 3, H, W]`` (normalised)."""
        return self.head(self.features(x))


@dataclass
class TrainConfig:
    """Knobs of one training run (defaults sized for a 2-core CPU and ~2,000 images)."""

    steps: int = 300
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    width: int = 16
    flip: bool = False
    # FixMatch
    fm_steps: int = 200
    fm_lr: float = 3e-3
    mu: int = 2
    tau: float = 0.85
    lambda_u: float = 1.0
    ema: float = 0.98
    """Decay of the weight average the returned model carries (0: no averaging)."""


def to_tensor(
    images: np.ndarray, device: torch.device, fit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[N, H, W, 3]`` to normalised float ``[N, 3, H, W]`` and the (mean, std) used,
    taken from the first ``fit`` images (all when None). One float copy (normalised in
    place), channels-last in memory: the layout the pixels come in."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
    x = x.float().div_(255.0)
    ref = x if fit is None else x[:fit]
    mean = ref.mean(dim=(0, 2, 3), keepdim=True)
    std = ref.std(dim=(0, 2, 3), keepdim=True).clamp_min(0.05)
    return x.sub_(mean).div_(std), torch.cat([mean, std])


def _amp(x: torch.Tensor) -> Any:
    """Mixed precision for the model's forward passes on CUDA; a no-op context elsewhere."""
    if x.device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _on(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """``model`` on ``x``'s device (channels-last weights on CUDA)."""
    model = model.to(x.device)
    return model.to(memory_format=torch.channels_last) if x.device.type == "cuda" else model


def _affine(x: torch.Tensor, rot: float, scale: float, shear: float, shift: float, flip: bool):
    b = x.shape[0]
    dev = x.device
    angle = (torch.rand(b, device=dev) * 2 - 1) * rot * math.pi / 180
    s = 1 + (torch.rand(b, device=dev) * 2 - 1) * scale
    sh = (torch.rand(b, device=dev) * 2 - 1) * shear
    tx, ty = ((torch.rand(2, b, device=dev) * 2 - 1) * shift * 2).unbind(0)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    sign = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    sign = sign.to(dev)
    theta = torch.stack(
        [
            torch.stack([cos * sign, -sin + sh, tx], dim=1),
            torch.stack([sin * sign, cos, ty], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def weak(x: torch.Tensor, flip: bool) -> torch.Tensor:
    """Small shifts (and mirror when ``flip``)."""
    return _affine(x, 0.0, 0.0, 0.0, 0.125, flip)


def strong(x: torch.Tensor, flip: bool) -> torch.Tensor:
    """Rotation, scale, shear, shifts, contrast/brightness jitter and a cut-out square."""
    x = _affine(x, 25.0, 0.2, 0.25, 0.15, flip)
    b = x.shape[0]
    dev = x.device
    contrast = 1 + (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * 0.5
    bright = (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * 0.5
    x = x * contrast + bright
    h, w = x.shape[-2:]
    ch, cw = max(1, h // 3), max(1, w // 3)
    ys = torch.randint(0, h - ch + 1, (b,), device=dev)
    xs = torch.randint(0, w - cw + 1, (b,), device=dev)
    rows = torch.arange(h, device=dev)[None, :, None]
    cols = torch.arange(w, device=dev)[None, None, :]
    hole = (
        (rows >= ys[:, None, None])
        & (rows < (ys + ch)[:, None, None])
        & (cols >= xs[:, None, None])
        & (cols < (xs + cw)[:, None, None])
    )
    return x.masked_fill(hole[:, None], 0.0)


def _loss(logits: torch.Tensor, y: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits, y)


def _probs(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, multi_label: bool, batch: int = 512) -> np.ndarray:
    """Probabilities ``[N, C]`` (softmax, or sigmoid for multi-label)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        with _amp(x):
            logits = model(x[i : i + batch])
        out.append(_probs(logits.float(), multi_label))
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def predict_and_embed(
    model: nn.Module, x: torch.Tensor, multi_label: bool, batch: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``[N, C]`` (as :func:`predict`) and the penultimate features ``[N, D]`` a
    :class:`SmallCNN` computes them from, in one pass."""
    model.eval()
    parts = []
    for i in range(0, len(x), batch):
        with _amp(x):
            parts.append(model.features(x[i : i + batch]).float())
    feats = torch.cat(parts)
    return _probs(model.head(feats), multi_label).cpu().numpy(), feats.cpu().numpy()


class _EMA:
    """Exponential moving average of a model's weights (BN statistics copied): a single model's
    predictions get steadier, closer to what an ensemble of its late states would say."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for a, b in zip(self.model.parameters(), model.parameters(), strict=True):
            a.lerp_(b, 1 - d)
        for a, b in zip(self.model.buffers(), model.buffers(), strict=True):
            a.copy_(b)


def _schedule(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    warm = max(1, steps // 20)
    return torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
    )


def train_supervised(
    x: torch.Tensor,
    y: torch.Tensor,
    n_out: int,
    multi_label: bool,
    cfg: TrainConfig,
    *,
    seed: int,
    tick: Callable[[], None] = lambda: None,
) -> nn.Module:
    """Train a fresh :class:`SmallCNN` on labeled ``x``/``y`` with weak augmentation."""
    torch.manual_seed(seed)
    model = _on(SmallCNN(n_out, cfg.width), x)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _schedule(opt, cfg.steps)
    gen = torch.Generator().manual_seed(seed)
    ema = _EMA(model, cfg.ema) if cfg.ema else None
    model.train()
    for step in range(cfg.steps):
        idx = torch.randint(0, len(x), (min(cfg.batch, max(len(x), 8)),), generator=gen)
        idx = idx.to(x.device)
        xb = weak(x[idx], cfg.flip) if step % 2 else strong(x[idx], cfg.flip)
        with _amp(x):
            logits = model(xb)
        loss = _loss(logits.float(), y[idx], multi_label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model, step)
        if step % 25 == 0:
            tick()
    return ema.model if ema is not None else model


def train_fixmatch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    xu: torch.Tensor,
    multi_label: bool,
    cfg: TrainConfig,
    *,
    seed: int,
    tick: Callable[[], None] = lambda: None,
) -> nn.Module:
    """Continue training ``model`` FixMatch-style: confident weak-view predictions on unlabeled
    ``xu`` become targets for their strong views (per label for multi-label)."""
    torch.manual_seed(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.fm_lr, weight_decay=cfg.weight_decay)
    sched = _schedule(opt, cfg.fm_steps)
    gen = torch.Generator().manual_seed(seed + 1)
    b = min(cfg.batch, max(len(x), 8))
    for p in model.parameters():  # it may come frozen, as a weight average
        p.requires_grad_(True)
    ema = _EMA(model, cfg.ema) if cfg.ema else None
    for step in range(cfg.fm_steps):
        idx = torch.randint(0, len(x), (b,), generator=gen).to(x.device)
        uidx = torch.randint(0, len(xu), (b * cfg.mu,), generator=gen).to(x.device)
        ub = xu[uidx]
        model.eval()  # pseudo-labels from the clean model (BN in inference mode)
        with torch.no_grad(), _amp(x):
            p = _probs(model(weak(ub, cfg.flip)).float(), multi_label)
        model.train()
        with _amp(x):
            logits = model(torch.cat([weak(x[idx], cfg.flip), strong(ub, cfg.flip)]))
        logits = logits.float()
        sup = _loss(logits[:b], y[idx], multi_label)
        lu = logits[b:]
        if multi_label:
            mask = (torch.maximum(p, 1 - p) >= cfg.tau).float()
            per = F.binary_cross_entropy_with_logits(lu, (p >= 0.5).float(), reduction="none")
            unsup = (per * mask).sum() / mask.numel()
        else:
            conf, pseudo = p.max(dim=1)
            mask = (conf >= cfg.tau).float()
            unsup = (F.cross_entropy(lu, pseudo, reduction="none") * mask).mean()
        loss = sup + cfg.lambda_u * unsup
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model, step)
        if step % 25 == 0:
            tick()
    return ema.model if ema is not None else model
