"""`to_torch(task="detection")`: images with their boxes as a `torch.utils.data.Dataset` that
`torchvision.models.detection` models train on directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jlabel.export.values import boxes_of

if TYPE_CHECKING:
    import torch

    from jlabel.dataset import Dataset

BACKGROUND = "__background__"
"""``classes[0]``: torchvision detectors reserve label 0 for the background."""


def to_torch_detection(
    ds: Dataset,
    *,
    tab: str,
    transform: Callable[..., Any] | None,
    image_size: tuple[int, int] | None,
    filters: dict[str, Any],
) -> torch.utils.data.Dataset:
    """The detection view of `ds` (see `jlabel.export.to_torch`)."""
    rows = ds.query(tab=tab, **filters)
    pairs = [
        (sample_id, boxes)
        for sample_id, boxes in zip(rows["id"], boxes_of(rows), strict=True)
        if boxes
    ]
    used = {b["label"] for _, boxes in pairs for b in boxes}
    names = [n for n in ds.labels if n in used]
    for _, boxes in pairs:
        names.extend(b["label"] for b in boxes if b["label"] not in names)
    ids = [str(sample_id) for sample_id, _ in pairs]
    paths = [ds.internal.source_path(i) for i in ids]
    cls = globals().get("TorchDetection") or __getattr__("TorchDetection")
    return cls(
        ds.internal.fs,
        paths,
        ids,
        [b for _, b in pairs],
        [BACKGROUND, *names],
        transform,
        image_size,
    )


def collate(batch: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """A `DataLoader` ``collate_fn`` for detection: ``(list of images, list of targets)``, as
    torchvision detection models take them (images of different sizes stay apart)."""
    images, targets = zip(*batch, strict=True) if batch else ((), ())
    return list(images), list(targets)


def _make_torch_detection() -> type:
    import numpy as np
    import torch
    from torchvision import tv_tensors

    from jlabel.images import open_rgb

    class TorchDetection(torch.utils.data.Dataset):
        """Images with boxes as ``(CHW float tensor in [0, 1], {"boxes", "labels"})``; see
        `to_torch`. Holds the filesystem and paths, not the Dataset (it pickles into
        DataLoader worker processes)."""

        collate_fn = staticmethod(collate)

        def __init__(
            self,
            fs: Any,
            paths: list[str],
            ids: list[str],
            boxes: list[list[dict]],
            classes: list[str],
            transform: Callable[..., Any] | None,
            image_size: tuple[int, int] | None,
        ) -> None:
            self.fs, self.paths, self.ids = fs, paths, ids
            self.classes = classes
            self.class_to_idx = {name: k for k, name in enumerate(classes)}
            self.num_classes = len(classes)
            self.transform, self.image_size = transform, image_size
            self.boxes = [
                np.asarray(
                    [[b["xmin"], b["ymin"], b["xmax"], b["ymax"]] for b in sample], np.float32
                ).reshape(-1, 4)
                for sample in boxes
            ]
            self.labels = [
                np.asarray([self.class_to_idx[b["label"]] for b in sample], np.int64)
                for sample in boxes
            ]

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
            image = open_rgb(self.fs.cat_file(self.paths[index]))
            coords = self.boxes[index].copy()
            if self.image_size is not None:
                height, width = self.image_size
                coords[:, 0::2] *= width / image.width
                coords[:, 1::2] *= height / image.height
                image = image.resize((width, height), resample=2)  # 2 = bilinear
            array = np.asarray(image, dtype=np.uint8)
            tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
            target = {
                "boxes": tv_tensors.BoundingBoxes(
                    torch.from_numpy(coords),
                    format=tv_tensors.BoundingBoxFormat.XYXY,
                    canvas_size=(image.height, image.width),
                ),
                "labels": torch.from_numpy(self.labels[index].copy()),
            }
            if self.transform is not None:
                return self.transform(tensor, target)
            return tensor, target

        def __repr__(self) -> str:
            n_boxes = sum(len(b) for b in self.boxes)
            return (
                f"<TorchDetection: {len(self)} images, {n_boxes} boxes, "
                f"{self.num_classes - 1} classes + background>"
            )

    TorchDetection.__module__, TorchDetection.__qualname__ = __name__, "TorchDetection"
    return TorchDetection


def __getattr__(name: str) -> Any:  # built on first use: torch imports slowly
    if name == "TorchDetection":
        cls = _make_torch_detection()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
