"""Devices, torchvision backbones (pretrained when the weights can be had) and embeddings."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from jlabel.autolabel import cache, decoding

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


def normalise(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` to ImageNet-normalised float ``[N, 3, H, W]`` on ``device``
    (channels-last in memory: the layout the pixels come in, and cuDNN's fastest)."""
    t = (
        images
        if isinstance(images, torch.Tensor)
        else torch.from_numpy(np.ascontiguousarray(images))
    )
    x = t.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN, device=device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=device)[None, :, None, None]
    return ((x / 255.0 - mean) / std).contiguous(memory_format=torch.channels_last)


def autocast(device: torch.device) -> Any:
    """Mixed precision on CUDA (bfloat16 where the GPU has it, else float16); a no-op
    context elsewhere."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def prepare(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in eval mode on ``device`` (channels-last weights on CUDA)."""
    module = module.to(device).eval()
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    return module


@torch.no_grad()
def embed_arrays(
    bb: Backbone,
    images: np.ndarray | torch.Tensor,
    device: torch.device,
    *,
    batch: int = 64,
    tick: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Embeddings ``[N, D]`` (float32) of uint8 images ``[N, S, S, 3]`` (numpy, or a tensor,
    pinned for a fast copy to CUDA)."""
    module = prepare(bb.module, device)
    out = []
    for start in range(0, len(images), batch):
        with autocast(device):
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
    workers: int | None = None,
    tick: Callable[[float], None] | None = None,
) -> tuple[list[str], np.ndarray, dict[str, str], int]:
    """Embeddings of ``ids``, cached under the store keyed by (backbone, size, file version).

    Images are decoded a chunk at a time (DataLoader workers on CUDA, see
    :func:`jlabel.autolabel.decoding.chunks`), embedded and written to the cache, so memory
    holds one chunk of pixels. Returns ``(ok_ids, [N, D] array, skipped {id: reason},
    number computed now)``.
    """

    def compute(missing: list[str]) -> Iterator[cache.Chunk]:
        for ok, images, skipped in decoding.chunks(
            ds, missing, bb.size, device=device, workers=workers, on_progress=tick
        ):
            feats = embed_arrays(bb, images, device) if ok else np.zeros((0, 0), np.float32)
            yield ok, feats, skipped

    cacheable = use_cache and bb.name is not None and not bb.name.startswith("module:")
    return cache.cached_arrays(ds, ids, f"emb:{bb.name}:{bb.size}", compute, use_cache=cacheable)


def pixels(
    ds: Any,
    ids: Sequence[str],
    size: int,
    *,
    use_cache: bool = True,
    workers: int | None = None,
    tick: Callable[[float], None] | None = None,
) -> tuple[list[str], np.ndarray, dict[str, str], int]:
    """Decoded ``[N, size, size, 3]`` uint8 images, cached like embeddings (a memory-mapped
    file under the dataset's cache, filled a chunk at a time)."""

    def compute(missing: list[str]) -> Iterator[cache.Chunk]:
        for ok, images, skipped in decoding.chunks(
            ds, missing, size, workers=workers, on_progress=tick
        ):
            yield ok, images.numpy(), skipped

    return cache.cached_arrays(ds, ids, f"pixels:{size}", compute, use_cache=use_cache)


def fallback_warning(exc: Exception) -> str:
    """Warn that pretrained weights are missing and say what happens instead."""
    text = (
        f"{exc}. Falling back to a small CNN trained on your labels in the kernel "
        "(fine for simple images; for photos put the weights file in "
        "~/.cache/torch/hub/checkpoints/ or pass backbone=<your nn.Module>)."
    )
    warnings.warn(text, RuntimeWarning, stacklevel=3)
    return text
