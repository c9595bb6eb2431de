"""Auto-labeling in the kernel: jobs that propose labels (``auto_label``), apply an existing
model (``pre_label``) or cluster images (``auto_group``).

Jobs run one at a time per dataset object in a background thread; a job started while another
runs is queued (``queue=True``, the default) or refused with ``PreconditionError``
(``queue=False``). Preconditions are checked before queueing and again when the job starts.
Each job's record is kept as JSON under ``<root>/.jlabel/jobs/``; ``job_history(ds)`` lists them.
"""

from __future__ import annotations

import weakref
from typing import Any

from jlabel.autolabel.jobs import Job, JobQueue, load_history
from jlabel.errors import PreconditionError

__all__ = [
    "Job",
    "JobQueue",
    "job_history",
    "job_queue",
    "start_auto_group",
    "start_auto_label",
    "start_pre_label",
]

_QUEUES: weakref.WeakKeyDictionary[Any, JobQueue] = weakref.WeakKeyDictionary()


def job_queue(ds: Any) -> JobQueue:
    """The job queue of this dataset object (created on first use)."""
    queue = _QUEUES.get(ds)
    if queue is None:
        queue = _QUEUES[ds] = JobQueue(ds)
    return queue


def job_history(ds: Any) -> list[dict[str, Any]]:
    """Every job of the dataset (persisted ones too), newest first, as dicts."""
    queue = job_queue(ds)
    live = [*queue.queued, *([queue.current] if queue.current else [])]
    return load_history(ds, live)


def _progress_bar(job: Job) -> None:
    """A tqdm bar (widget in notebooks) fed from the job thread; created here, in the caller."""
    from tqdm.auto import tqdm

    bar = tqdm(total=100, desc=f"{job.kind} ({job.status})", unit="%", leave=True)
    state = {"shown": 0}

    def update(j: Job) -> None:
        now = round(j.progress * 100)
        if now > state["shown"]:
            bar.update(now - state["shown"])
            state["shown"] = now
        bar.set_description(f"{j.kind}: {j.message}"[:60], refresh=False)
        if j.status in ("done", "failed", "cancelled"):
            bar.close()
            unsubscribe()

    unsubscribe = job.subscribe(update)
    if job.status in ("done", "failed", "cancelled"):  # finished before we subscribed
        update(job)


def _submit(ds: Any, job: Job, *, queue: bool, progress: bool) -> Job:
    job_queue(ds).submit(job, queue=queue)
    if progress:
        _progress_bar(job)
    return job


def start_auto_label(
    ds: Any,
    *,
    mode: str = "fast",
    target_precision: float = 0.95,
    backbone: Any = "resnet18",
    weights: str | None = "DEFAULT",
    device: str | None = None,
    seed: int = 0,
    image_size: int = 24,
    input_size: int = 224,
    include_proposed: bool = True,
    queue: bool = True,
    progress: bool = True,
    train: Any = None,
    min_unlabeled_for_semi: int = 500,
    min_agreement: float = 0.8,
) -> Job:
    """Start (or queue) an active-learning job that proposes labels for unlabeled images.

    Parameters
    ----------
    mode : ``"fast"`` (learn from the labels only) or ``"precise"`` (semi-supervised; keeps the
        labels-only learner when that does better on held-out labels).
    target_precision : precision the confidence threshold is calibrated to (default 0.95);
        proposals under it are marked hard.
    backbone, weights : a torchvision model name and weights (``"DEFAULT"`` = pretrained; when
        they cannot be had a small CNN is trained instead, with a warning), ``weights=None``
        for random weights, an ``nn.Module`` feature extractor, or ``"cnn"`` for the small CNN.
    device : ``"cuda"``, ``"mps"``, ``"cpu"``; default the best available.
    image_size : side in pixels of the images the small CNN learns from.
    input_size : side in pixels of the images a backbone embeds (224 for ImageNet models).
    include_proposed : also re-propose for images whose proposals are not confirmed yet.
    queue : when False, raise ``PreconditionError`` if a job of this dataset is running.
    progress : show a tqdm progress bar.
    train : a ``jlabel.autolabel.cnn.TrainConfig`` (steps, batch...) for the small CNN.
    min_unlabeled_for_semi : with fewer unlabeled images the small CNN skips semi-supervision.
    min_agreement : a proposal is also hard when fewer than this share of the 5 fold models
        agree with it.
    """
    from jlabel.autolabel import active, data

    if mode not in ("fast", "precise"):
        raise ValueError(f"mode must be 'fast' or 'precise', not {mode!r}")
    if not 0.5 <= target_precision < 1:
        raise ValueError(f"target_precision must be in [0.5, 1), not {target_precision!r}")
    data.collect(ds, include_proposed=include_proposed)
    params = {
        "mode": mode,
        "target_precision": target_precision,
        "backbone": backbone if isinstance(backbone, str) else type(backbone).__name__,
        "weights": weights,
        "device": device,
        "seed": seed,
        "image_size": image_size,
        "input_size": input_size,
    }
    kw = dict(
        mode=mode,
        target_precision=target_precision,
        backbone=backbone,
        weights=weights,
        device=device,
        seed=seed,
        image_size=image_size,
        input_size=input_size,
        include_proposed=include_proposed,
        train=train,
        min_unlabeled_for_semi=min_unlabeled_for_semi,
        min_agreement=min_agreement,
    )
    job = Job("auto_label", params, lambda j: active.run(j, ds, **kw))
    return _submit(ds, job, queue=queue, progress=progress)


def start_pre_label(
    ds: Any,
    model: Any,
    *,
    classes: list[str] | None = None,
    mapping: dict[str, str] | None = None,
    weights: str | None = None,
    target_precision: float = 0.95,
    multi_label: bool = False,
    device: str | None = None,
    input_size: int = 224,
    include_proposed: bool = True,
    queue: bool = True,
    progress: bool = True,
) -> Job:
    """Start (or queue) a job that labels unlabeled images with an existing model.

    Parameters
    ----------
    model : a ``torch.nn.Module`` (with ``classes``), a TorchScript file path, a torchvision
        model name (with ``weights``; classes from the weights' metadata), or a callable taking
        a list of PIL RGB images and returning ``[(labels, scores)]`` or a ``[N, C]``
        probability array (with ``classes``).
    classes : the model's output names, in order.
    mapping : model class -> dataset label; unmapped classes are dropped. Default: classes that
        are dataset labels (all of them when the dataset has no labels yet).
    target_precision : hard-example threshold, calibrated on the labeled images when there are
        10+; otherwise scores under it are hard.
    multi_label : sigmoid outputs, every class with p >= 0.5 proposed.
    input_size : side of the square the images are resized/cropped to for modules.
    """
    from jlabel.autolabel import data, prelabel

    if isinstance(model, str) and not model.strip():
        raise PreconditionError("model is empty: pass a module, a file path, a name or a callable")
    prelabel.check_model(model, classes, weights)
    data.target_ids(ds, include_proposed)
    params = {
        "model": model if isinstance(model, str) else type(model).__name__,
        "classes": list(classes) if classes is not None else None,
        "mapping": mapping,
        "weights": weights,
        "target_precision": target_precision,
        "multi_label": multi_label,
        "device": device,
    }
    kw = dict(
        classes=classes,
        mapping=mapping,
        weights=weights,
        target_precision=target_precision,
        multi_label=multi_label,
        device=device,
        input_size=input_size,
        include_proposed=include_proposed,
    )
    job = Job("pre_label", params, lambda j: prelabel.run(j, ds, model, **kw))
    return _submit(ds, job, queue=queue, progress=progress)


def start_auto_group(
    ds: Any,
    *,
    n_groups: int = 8,
    backbone: Any = "resnet18",
    weights: str | None = "DEFAULT",
    device: str | None = None,
    seed: int = 0,
    queue: bool = True,
    progress: bool = True,
) -> Job:
    """Start (or queue) a job that clusters every image into ``n_groups`` groups by its
    embedding (downscaled pixels when no pretrained backbone can be had) and sets ``group``."""
    from jlabel.autolabel import group

    if n_groups < 2:
        raise ValueError(f"n_groups must be at least 2, not {n_groups}")
    if len(ds.query(tab="all")) < 2:
        raise PreconditionError("Auto grouping needs at least 2 images; add images first.")
    params = {
        "n_groups": n_groups,
        "backbone": backbone if isinstance(backbone, str) else type(backbone).__name__,
        "weights": weights,
        "device": device,
        "seed": seed,
    }
    kw = dict(n_groups=n_groups, backbone=backbone, weights=weights, device=device, seed=seed)
    job = Job("auto_group", params, lambda j: group.run(j, ds, **kw))
    return _submit(ds, job, queue=queue, progress=progress)
