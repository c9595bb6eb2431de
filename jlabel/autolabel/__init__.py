"""Auto-labeling in the kernel: jobs that propose labels (``auto_label``), apply an existing
model (``pre_label``) or cluster images (``auto_group``).

Jobs run one at a time per dataset object in a background thread; a job started while another
runs is queued (``queue=True``, the default) or refused with ``PreconditionError``
(``queue=False``). Preconditions are checked before queueing and again when the job starts.
Each job's record is kept as JSON under ``<root>/.jlabel/jobs/``; ``job_history(ds)`` lists them.
"""

from __future__ import annotations

import functools
from typing import Any

from jlabel.autolabel.jobs import Job, JobQueue, load_history
from jlabel.errors import InvalidArgument, PreconditionError
from jlabel.options import AUTO_GROUP, AUTO_LABEL, PRE_LABEL

__all__ = [
    "Job",
    "JobQueue",
    "job_history",
    "job_queue",
    "start_auto_group",
    "start_auto_label",
    "start_pre_label",
]


def job_queue(ds: Any) -> JobQueue:
    """The job queue of this dataset object (``ds.jobs``, created on first use)."""
    return ds.jobs


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


def _name(model: Any) -> str:
    """How a backbone or model is named in a job's params (a name, or the class name)."""
    return model if isinstance(model, str) else type(model).__name__


def _submit(ds: Any, job: Job, *, queue: bool, progress: bool) -> Job:
    job_queue(ds).submit(job, queue=queue)
    if progress:
        _progress_bar(job)
    return job


def start_auto_label(ds: Any, **options: Any) -> Job:
    """Start (or queue) an active-learning job; options as in ``jlabel.options.AUTO_LABEL``."""
    from jlabel.autolabel import active, data

    opts = AUTO_LABEL.resolve(options)
    queue, progress = opts.pop("queue"), opts.pop("progress")
    if opts.pop("task") == "detection":
        from jlabel.autolabel import detect
        from jlabel.autolabel.detect import data as box_data

        opts["task"] = "detection"
        body = detect.job_body(ds, opts)
        box_data.collect(ds, include_proposed=opts["include_proposed"])
        job = Job("auto_label", detect.params(opts), body)
        return _submit(ds, job, queue=queue, progress=progress)
    data.collect(ds, include_proposed=opts["include_proposed"])
    backbone = opts["backbone"]
    params = {
        name: opts[name]
        for name in ("mode", "target_precision", "weights", "device", "seed", "image_size")
    }
    params["input_size"] = opts["input_size"]
    params["backbone"] = _name(backbone)
    job = Job("auto_label", params, lambda j: active.run(j, ds, **opts))
    return _submit(ds, job, queue=queue, progress=progress)


def start_pre_label(ds: Any, model: Any, **options: Any) -> Job:
    """Start (or queue) a job that labels unlabeled images with an existing model; options as
    in ``jlabel.options.PRE_LABEL``."""
    from jlabel.autolabel import data, prelabel

    opts = PRE_LABEL.resolve(options)
    queue, progress = opts.pop("queue"), opts.pop("progress")
    if isinstance(model, str) and not model.strip():
        raise PreconditionError("model is empty: pass a module, a file path, a name or a callable")
    prelabel.check_model(model, opts["classes"], opts["weights"])
    task = opts.pop("task")
    params = {
        "model": _name(model),
        "task": task,
        "classes": list(opts["classes"]) if opts["classes"] is not None else None,
        **{k: opts[k] for k in ("mapping", "weights", "target_precision", "multi_label", "device")},
    }
    detection = ("min_score", "nms_iou", "max_boxes")
    if task == "detection":
        from jlabel.autolabel import prelabel_boxes

        if opts["multi_label"]:
            raise InvalidArgument("multi_label applies to task='classification'; leave it out")
        prelabel_boxes.check_model(model)
        prelabel_boxes.check_targets(ds, opts["include_proposed"])
        params.update({k: opts[k] for k in detection})
        body = functools.partial(prelabel_boxes.run, ds=ds, model=model, **opts)
    else:
        data.target_ids(ds, opts["include_proposed"])
        for name in detection:
            opts.pop(name)
        body = functools.partial(prelabel.run, ds=ds, model=model, **opts)
    job = Job("pre_label", params, body)
    return _submit(ds, job, queue=queue, progress=progress)


def start_auto_group(ds: Any, **options: Any) -> Job:
    """Start (or queue) a job that clusters every image into ``n_groups`` groups by its
    embedding (downscaled pixels when no pretrained backbone can be had) and sets ``group``;
    options as in ``jlabel.options.AUTO_GROUP``."""
    from jlabel.autolabel import group

    opts = AUTO_GROUP.resolve(options)
    queue, progress = opts.pop("queue"), opts.pop("progress")
    if len(ds) < 2:
        raise PreconditionError("Auto grouping needs at least 2 images; add images first.")
    backbone = opts["backbone"]
    params = {
        **opts,
        "backbone": backbone if isinstance(backbone, str) else type(backbone).__name__,
    }
    job = Job("auto_group", params, lambda j: group.run(j, ds, **opts))
    return _submit(ds, job, queue=queue, progress=progress)
