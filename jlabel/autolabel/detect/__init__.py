"""Auto-labeling object-detection boxes: ``ds.auto_label(task="detection")``.

Modules: :mod:`.data` (preconditions, decoding), :mod:`.augment` (copy-paste, multi-scale,
colour), :mod:`.model` (a small CenterNet-style detector), :mod:`.train` (supervised and
EMA-teacher self-training), :mod:`.pretrained` (a COCO torchvision detector when its weights
can be had), :mod:`.calibrate` (per-image decisions and the cut fitted on held-out images),
:mod:`.job` (the job body).
"""

from __future__ import annotations

from typing import Any

from jlabel.autolabel.detect.augment import Augment
from jlabel.autolabel.detect.train import DetectConfig
from jlabel.errors import InvalidArgument

__all__ = ["Augment", "DetectConfig", "job_body", "params"]

IGNORED = ("backbone", "image_size", "input_size", "min_unlabeled_for_semi", "min_agreement")
"""auto_label options that only classification uses."""


def check_config(train: Any) -> DetectConfig:
    """The ``train`` option of a detection job: None or a :class:`DetectConfig`."""
    if train is None:
        return DetectConfig()
    if not isinstance(train, DetectConfig):
        raise InvalidArgument(
            "train must be None or jlabel.autolabel.detect.DetectConfig for "
            f"task='detection', not {type(train).__name__}"
        )
    return train


def params(opts: dict[str, Any]) -> dict[str, Any]:
    """What a detection job's record shows of its options."""
    cfg = check_config(opts["train"])
    keep = ("task", "mode", "target_precision", "weights", "device", "seed", "include_proposed")
    return {
        **{k: opts[k] for k in keep},
        "train": {"steps": cfg.steps, "folds": cfg.folds, "side": cfg.side},
    }


def job_body(ds: Any, opts: dict[str, Any]) -> Any:
    """The job body for ``opts`` (resolved auto_label options, queue/progress removed)."""
    from jlabel.autolabel.detect import job

    cfg = check_config(opts["train"])
    kwargs = {
        k: opts[k]
        for k in ("mode", "target_precision", "weights", "device", "seed", "include_proposed")
    }
    return lambda j: job.run(j, ds, train_config=cfg, **kwargs)
