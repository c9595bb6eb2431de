"""Training the small detector: supervised on augmented labeled images (fast), then
self-training on the images without boxes from an EMA teacher's pseudo-boxes (precise)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from jlabel.autolabel.detect import augment, model
from jlabel.autolabel.detect.calibrate import Candidates, nms


@dataclass
class DetectConfig:
    """Settings of a detection job (``ds.auto_label(task="detection", train=...)``)."""

    side: int | None = None
    """Side in pixels images are learned at (letterboxed); None: the labeled images' median
    longer side, in [64, 160]."""
    steps: int = 700
    """Supervised steps per fold model."""
    batch: int = 32
    width: int = 32
    """Channels of the detector (its cost grows with the square)."""
    lr: float = 3e-3
    folds: int = 4
    """Fold models: each is trained with one fold of the boxed images held out (calibration),
    and all of them together propose the boxes."""
    augment: augment.Augment = field(default_factory=augment.Augment)
    semi_steps: int = 500
    """Self-training steps per fold model (precise)."""
    pseudo: float = 0.5
    """Teacher score at which a candidate becomes a pseudo-box (precise)."""
    ema: float = 0.995
    floor: float = 0.05
    """Candidates under this score are not kept."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""


def to_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """``[B, S, S, 3]`` uint8 to normalised ``[B, 3, S, S]`` float."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return (x.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25


def _schedule(
    opt: torch.optim.Optimizer, lr: float, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warm = max(1, steps // 20)

    def factor(i: int) -> float:
        if i < warm:
            return (i + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (i - warm) / max(1, steps - warm))) * 0.97 + 0.03

    for group in opt.param_groups:
        group["lr"] = lr
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_supervised(
    batches: augment.Batches,
    n_classes: int,
    cfg: DetectConfig,
    device: torch.device,
    seed: int,
    tick: Callable[[int], None] = lambda n: None,
) -> model.CenterNet:
    """A detector trained from scratch on ``batches``; ``tick(k)`` every ``k`` steps."""
    torch.manual_seed(seed)
    net = model.CenterNet(n_classes, cfg.width).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = _schedule(opt, cfg.lr, cfg.steps)
    net.train()
    for step in range(cfg.steps):
        imgs, bxs, lbs = batches.sample(cfg.batch)
        heat, reg, mask = (t.to(device) for t in model.targets(bxs, lbs, n_classes, batches.side))
        loss = model.loss(net(to_input(imgs, device)), heat, reg, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 25 == 0:
            tick(25)
    return net.eval()


@torch.no_grad()
def predict(
    net: torch.nn.Module, images: np.ndarray, device: torch.device, floor: float, batch: int = 64
) -> list[Candidates]:
    """Candidates per image (boxes in input pixels)."""
    net.eval()
    out: list[Candidates] = []
    for i in range(0, len(images), batch):
        out += model.decode(net(to_input(images[i : i + batch], device)), floor=floor)
    return out


def train_semi(
    student: model.CenterNet,
    batches: augment.Batches,
    pool: np.ndarray,
    n_classes: int,
    cfg: DetectConfig,
    device: torch.device,
    seed: int,
    tick: Callable[[int], None] = lambda n: None,
) -> model.CenterNet:
    """Self-training in the spirit of Unbiased Teacher: an EMA teacher sees a weak view (a
    flip) of images without boxes; its NMS survivors over ``cfg.pseudo`` are the student's
    targets on a strong view (colour, noise, cut-out) of the same geometry, and pixels where
    the teacher is unsure (0.1 to ``cfg.pseudo``) are left out of the loss. Labeled batches
    keep training alongside."""
    rng = np.random.default_rng(seed + 7919)
    teacher = copy.deepcopy(student).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr / 3, weight_decay=1e-4)
    sched = _schedule(opt, cfg.lr / 3, cfg.semi_steps)
    side = batches.side
    student.train()
    for step in range(cfg.semi_steps):
        imgs, bxs, lbs = batches.sample(cfg.batch)
        heat, reg, mask = (t.to(device) for t in model.targets(bxs, lbs, n_classes, side))
        sup = model.loss(student(to_input(imgs, device)), heat, reg, mask)

        weak = pool[rng.integers(0, len(pool), cfg.batch)]
        if rng.random() < 0.5:
            weak = weak[:, :, ::-1]
        with torch.no_grad():
            t_out = teacher(to_input(weak, device))
            cands = model.decode(t_out, floor=0.1)
            t_heat = torch.sigmoid(t_out[0])
        pb, pl = [], []
        for boxes, labels, scores in cands:
            keep, _ = nms((boxes, labels, scores))
            keep = keep[scores[keep] >= cfg.pseudo] if len(keep) else keep
            pb.append(np.clip(boxes[keep], 0, side))
            pl.append(labels[keep])
        p_heat, p_reg, p_mask = (t.to(device) for t in model.targets(pb, pl, n_classes, side))
        unsure = (t_heat > 0.1) & (t_heat < cfg.pseudo) & (p_heat < 0.5)
        weight = (~unsure).float()
        strong = np.stack([augment.cutout(augment.photometric(w, 1.0, rng), rng) for w in weak])
        unsup = model.loss(student(to_input(strong, device)), p_heat, p_reg, p_mask, weight)
        loss = sup + unsup
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters(), strict=True):
                pt.mul_(cfg.ema).add_(ps.detach(), alpha=1 - cfg.ema)
            for bt, bs in zip(teacher.buffers(), student.buffers(), strict=True):
                bt.copy_(bs)
        if (step + 1) % 25 == 0:
            tick(25)
    return teacher.eval()
