"""The pretrained path: a torchvision detector with COCO weights, fine-tuned on the boxes.

Used when its weights can be loaded (cached or downloadable); otherwise the job trains the
small detector of :mod:`jlabel.autolabel.detect.model` from scratch and says so in its notes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from jlabel.autolabel.detect import augment
from jlabel.autolabel.detect.calibrate import Candidates
from jlabel.autolabel.features import WeightsUnavailable

ARCH = "fasterrcnn_mobilenet_v3_large_320_fpn"


def load(weights: str | None) -> torch.nn.Module:
    """The COCO-pretrained detector (``weights``: ``"DEFAULT"`` or a weights name); raises
    ``WeightsUnavailable`` when they cannot be had."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(ARCH)[str(weights).split(".")[-1]]
        return torchvision.models.get_model(ARCH, weights=enum, box_score_thresh=0.01)
    except KeyError as exc:
        raise WeightsUnavailable(f"unknown weights {weights!r} for {ARCH}") from exc
    except Exception as exc:  # no internet: URLError, OSError, RuntimeError
        raise WeightsUnavailable(f"COCO weights for {ARCH} could not be loaded: {exc}") from exc


def fine_tune(
    base: torch.nn.Module,
    batches: augment.Batches,
    n_classes: int,
    steps: int,
    device: torch.device,
    seed: int,
    batch: int = 8,
    tick: Callable[[int], None] = lambda n: None,
) -> torch.nn.Module:
    """A copy of ``base`` with a new box predictor for ``n_classes``, fine-tuned."""
    import copy

    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    torch.manual_seed(seed)
    net = copy.deepcopy(base)
    head = net.roi_heads.box_predictor
    net.roi_heads.box_predictor = FastRCNNPredictor(head.cls_score.in_features, n_classes + 1)
    net.to(device).train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    for step in range(steps):
        imgs, bxs, lbs = batches.sample(batch)
        x = [torch.from_numpy(i).permute(2, 0, 1).float().div(255).to(device) for i in imgs]
        targets = [
            {
                "boxes": torch.from_numpy(b).reshape(-1, 4).to(device),
                "labels": torch.from_numpy(lab + 1).to(device),
            }
            for b, lab in zip(bxs, lbs, strict=True)
        ]
        losses = net(x, targets)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 25 == 0:
            tick(25)
    return net.eval()


@torch.no_grad()
def predict(
    net: torch.nn.Module, images: np.ndarray, device: torch.device, floor: float, batch: int = 16
) -> list[Candidates]:
    """Candidates per image (boxes in input pixels, labels from 0)."""
    net.eval()
    out: list[Candidates] = []
    for i in range(0, len(images), batch):
        x = [
            torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255).to(device)
            for im in images[i : i + batch]
        ]
        for r in net(x):
            keep = r["scores"] >= floor
            out.append(
                (
                    r["boxes"][keep].cpu().numpy().astype(np.float32),
                    (r["labels"][keep] - 1).cpu().numpy().astype(np.int64),
                    r["scores"][keep].cpu().numpy().astype(np.float32),
                )
            )
    return out
