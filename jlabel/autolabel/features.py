"""Devices, torchvision backbones (pretrained when the weights can be had) and embeddings."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from jlabel.autolabel import data

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else cuda, then mps, then cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Backbone:
    """A frozen feature extractor: ``module(images [B,3,S,S] normalised) -> [B, D]``."""

    module: nn.Module
    name: str
    size: int
    pretrained: bool


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be loaded (no internet, no cached file)."""


def load_backbone(backbone: str | nn.Module, weights: str | None, *, size: int = 224) -> Backbone:
    """A torchvision model (by name) without its classifier, or a user module as given.

    ``weights``: ``"DEFAULT"`` or a torchvision weights name loads pretrained weights (raising
    ``WeightsUnavailable`` when they cannot be had); ``None`` keeps random weights.
    """
    if isinstance(backbone, nn.Module):
        return Backbone(backbone.eval(), f"module:{type(backbone).__name__}", size, pretrained=True)
    import torchvision

    enum = None
    if weights is not None:
        try:
            enum = torchvision.models.get_model_weights(backbone)[str(weights).split(".")[-1]]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"Unknown weights {weights!r} for {backbone!r}: {exc}") from exc
    try:
        model = torchvision.models.get_model(backbone, weights=enum)
    except ValueError:
        raise
    except Exception as exc:  # download failures come as URLError, OSError, RuntimeError
        raise WeightsUnavailable(
            f"Pretrained weights for {backbone} ({weights}) could not be loaded: {exc}"
        ) from exc
    strip_classifier(model)
    name = f"{backbone}:{weights or 'random'}"
    return Backbone(model.eval(), name, size, pretrained=enum is not None)


def strip_classifier(model: nn.Module) -> None:
    """Replace the final classifier of a torchvision model by an identity (in place)."""
    for attr in ("fc", "classifier", "head", "heads"):
        if isinstance(getattr(model, attr, None), nn.Module):
            setattr(model, attr, nn.Identity())
            return


def normalise(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` to ImageNet-normalised float ``[N, 3, H, W]`` on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN, device=device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=device)[None, :, None, None]
    return (x / 255.0 - mean) / std


@torch.no_grad()
def embed_arrays(
    bb: Backbone,
    images: np.ndarray,
    device: torch.device,
    *,
    batch: int = 64,
    tick: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Embeddings ``[N, D]`` (float32) of uint8 images ``[N, S, S, 3]``."""
    module = bb.module.to(device).eval()
    out = []
    for start in range(0, len(images), batch):
        feats = module(normalise(images[start : start + batch], device))
        out.append(feats.flatten(1).float().cpu().numpy())
        if tick is not None:
            tick(min(1.0, (start + batch) / max(1, len(images))))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def embeddings(
    ds: Any,
    ids: Sequence[str],
    bb: Backbone,
    device: torch.device,
    *,
    use_cache: bool = True,
    tick: Callable[[float], None] | None = None,
) -> tuple[list[str], np.ndarray, dict[str, str], int]:
    """Embeddings of ``ids``, cached under the store keyed by (backbone, size, file version).

    Returns ``(ok_ids, [N, D] array, skipped {id: reason}, number computed now)``.
    """

    def compute(missing: list[str]) -> tuple[list[str], np.ndarray, dict[str, str]]:
        ok, pixels, skipped = data.decode_many(
            ds, missing, bb.size, on_progress=(lambda f: tick(0.5 * f)) if tick else None
        )
        feats = embed_arrays(
            bb, pixels, device, tick=(lambda f: tick(0.5 + 0.5 * f)) if tick else None
        )
        return ok, feats, skipped

    cacheable = use_cache and bb.name is not None and not bb.name.startswith("module:")
    return data.cached_arrays(ds, ids, f"emb:{bb.name}:{bb.size}", compute, use_cache=cacheable)


def pixels(
    ds: Any,
    ids: Sequence[str],
    size: int,
    *,
    use_cache: bool = True,
    tick: Callable[[float], None] | None = None,
) -> tuple[list[str], np.ndarray, dict[str, str], int]:
    """Decoded ``[N, size, size, 3]`` uint8 images, cached like embeddings."""

    def compute(missing: list[str]) -> tuple[list[str], np.ndarray, dict[str, str]]:
        return data.decode_many(ds, missing, size, on_progress=tick)

    return data.cached_arrays(ds, ids, f"pixels:{size}", compute, use_cache=use_cache)


def fallback_warning(exc: Exception) -> str:
    """Warn that pretrained weights are missing and say what happens instead."""
    text = (
        f"{exc}. Falling back to a small CNN trained on your labels in the kernel "
        "(fine for simple images; for photos put the weights file in "
        "~/.cache/torch/hub/checkpoints/ or pass backbone=<your nn.Module>)."
    )
    warnings.warn(text, RuntimeWarning, stacklevel=3)
    return text
