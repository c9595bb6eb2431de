"""`to_torch`: a dataset's samples as a `torch.utils.data.Dataset`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jlabel.errors import InvalidArgument, PreconditionError
from jlabel.export.reading import load_usable, usable_rows
from jlabel.export.values import labels_of

if TYPE_CHECKING:
    import torch

    from jlabel.dataset import Dataset

TASKS = ("classification", "detection")


def to_torch(
    ds: Dataset,
    *,
    tab: str = "labeled",
    task: str = "classification",
    transform: Callable[..., Any] | None = None,
    multi_label: bool | None = None,
    image_size: int | tuple[int, int] | None = None,
    **filters: Any,
) -> torch.utils.data.Dataset:
    """A `torch.utils.data.Dataset` of the samples of `tab` (narrowed by `filters`).

    Item `i` is `(image, target)`: `image` a float tensor of shape (3, H, W) in [0, 1] (RGB;
    resized to `image_size`, an int or (height, width), when given: needed to batch images of
    different sizes), passed through `transform` when given. `target` is the class index
    (int; -1 for a sample without a label) for a single-label dataset, or a float tensor of
    shape (len(classes),) with 1.0 per label (multi-hot) for a multi-label one.
    `multi_label=None` picks multi-label when some sample has more than one label.
    `classes` (= `ds.labels` at creation), `class_to_idx`, `ids` and `targets` are attributes.
    The samples and their labels are fixed when it is created.

    ``task="detection"``: the images of `tab` that have boxes (the others are left out); item
    `i` is `(image, {"boxes": FloatTensor[N, 4], "labels": Int64Tensor[N]})`, boxes in pixels
    of the (resized) image, xmin, ymin, xmax, ymax (a `torchvision.tv_tensors.BoundingBoxes`,
    so `torchvision.transforms.v2` moves them with the image), labels indexing `classes`,
    whose entry 0 is ``"__background__"`` (pass ``num_classes=len(view.classes)`` to a
    torchvision detector). `transform(image, target)` returns both. Batch with
    ``DataLoader(view, collate_fn=view.collate_fn)`` (lists of images and targets).
    """
    if task not in TASKS:
        raise InvalidArgument(
            f"task must be one of {', '.join(repr(t) for t in TASKS)}, not {task!r}"
        )
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if task == "detection":
        if multi_label is not None:
            raise InvalidArgument("multi_label applies to task='classification'; leave it out")
        from jlabel.export.torch_detection import to_torch_detection

        return to_torch_detection(
            ds, tab=tab, transform=transform, image_size=image_size, filters=filters
        )
    rows, skipped = usable_rows(ds.query(tab=tab, **filters))
    ids, labels = list(rows["id"]), labels_of(rows)
    classes = list(ds.labels)
    for names in labels:
        classes.extend(n for n in names if n not in classes)
    many = [i for i, names in zip(ids, labels, strict=True) if len(names) > 1]
    if multi_label is None:
        multi_label = bool(many)
    elif not multi_label and many:
        shown = ", ".join(repr(i) for i in many[:3])
        raise PreconditionError(
            f"{len(many)} sample(s) have several labels (e.g. {shown}); pass multi_label=True "
            "for multi-hot targets, or remove the extra labels"
        )
    cls = globals().get("TorchImages") or __getattr__("TorchImages")
    view = cls(ds.internal.source_reader, ids, labels, classes, multi_label, transform, image_size)
    view.skipped = skipped
    return view


def _make_torch_images() -> type:
    import numpy as np
    import torch

    class TorchImages(torch.utils.data.Dataset):
        """Labeled images as (CHW float tensor in [0, 1], target); see `to_torch`.

        Holds a reader of the source files (`jlabel.sources.SourceReader`), not the Dataset,
        so it pickles into DataLoader worker processes. An image that cannot be read or decoded
        is replaced by the next one that can, with a warning; `skipped` lists the samples left
        out at creation (flagged missing or corrupt).
        """

        def __init__(
            self,
            read: Callable[[str], bytes],
            ids: list[str],
            labels: list[list[str]],
            classes: list[str],
            multi_label: bool,
            transform: Callable[[torch.Tensor], Any] | None,
            image_size: tuple[int, int] | None,
        ) -> None:
            self.read, self.ids = read, ids
            self.skipped: dict[str, str] = {}
            self._bad: set[int] = set()
            self.classes = classes
            self.class_to_idx = {name: k for k, name in enumerate(classes)}
            self.multi_label = multi_label
            self.transform, self.image_size = transform, image_size
            if multi_label:
                self.targets = torch.zeros(len(ids), len(classes))
                for row, names in enumerate(labels):
                    for name in names:
                        self.targets[row, self.class_to_idx[name]] = 1.0
            else:
                self.targets = [self.class_to_idx[n[0]] if n else -1 for n in labels]

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, index: int) -> tuple[Any, Any]:
            image, index = load_usable(self.read, self.ids, index, self._bad)
            if self.image_size is not None:
                height, width = self.image_size
                image = image.resize((width, height), resample=2)  # 2 = bilinear
            array = np.asarray(image, dtype=np.uint8)
            tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
            if self.transform is not None:
                tensor = self.transform(tensor)
            target = self.targets[index]
            return tensor, target.clone() if self.multi_label else target

        def __repr__(self) -> str:
            kind = "multi-label" if self.multi_label else "single-label"
            return f"<TorchImages: {len(self)} images, {len(self.classes)} classes, {kind}>"

    TorchImages.__module__, TorchImages.__qualname__ = __name__, "TorchImages"  # picklable
    return TorchImages


def __getattr__(name: str) -> Any:  # TorchImages is built on first use: torch imports slowly
    if name == "TorchImages":
        cls = _make_torch_images()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
