"""Writes the tutorial notebooks (no outputs): `python notebooks/_build.py`.

The notebooks are committed; edit the cells here, then run this script and commit both.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """\
import os
from pathlib import Path

import pandas as pd

import jlabel
from jlabel.demo import write_digits

# The sample data `make demo` writes: scikit-learn's handwritten digits as PNG files, plus
# `_truth.csv` with the true digit of each image (to play the part of a human labeler).
DATA = Path(os.environ.get("JLABEL_DEMO_DATA", "../demo-data"))
if not (DATA / "_truth.csv").exists():
    write_digits(DATA)
truth = pd.read_csv(DATA / "_truth.csv", dtype=str).set_index("id")["digit"]
print(f"{DATA.resolve()}: {len(truth)} images")"""


def quickstart() -> list:
    return [
        new_markdown_cell(
            "# jlabel quickstart\n\n"
            "Open a folder of images as a dataset, label it in the widget or in Python, filter, "
            "keep versions, undo, and get the labels out as a DataFrame, files or a PyTorch "
            "dataset. Everything lives next to the images, in the folder's `.jlabel/`."
        ),
        new_code_cell(SETUP),
        new_markdown_cell(
            "## Open the folder\n\n"
            "`jlabel.open` creates the dataset on first use (the store goes in "
            "`DATA/.jlabel/`) and syncs: every JPG/PNG/BMP becomes a sample, and a same-name "
            "`.txt` (labels, one per line) or `.xml` (Pascal VOC boxes) next to an image is "
            "imported. A sample's id is its path relative to the folder."
        ),
        new_code_cell("ds = jlabel.open(DATA)\nds"),
        new_markdown_cell(
            "Files added or removed later are picked up by `ds.sync()`; running it again changes "
            "nothing, and it never overwrites labels made in jlabel."
        ),
        new_code_cell("ds.sync()"),
        new_markdown_cell(
            "## Label in the widget\n\n"
            "Select thumbnails (click, shift-click for a range, space), then press a number "
            "key to apply one of the first nine labels, or use the label panel on the right. "
            "Arrows move, Enter opens the preview, Ctrl+Z undoes; the `?` button lists all "
            "shortcuts. Every click is saved before the widget shows it."
        ),
        new_code_cell("ds.labeler()"),
        new_markdown_cell(
            "## Label in Python\n\n"
            "Everything the widget does is a plain call on `ds`. Here we label the first 30 "
            "images with their true digit (label names are 1–32 letters, digits, `-` or `_`)."
        ),
        new_code_cell(
            "first = truth.head(30)\n"
            "for digit, ids in first.groupby(first).groups.items():\n"
            "    ds.label(list(ids), digit)\n"
            "ds.label_counts()"
        ),
        new_markdown_cell(
            "Labels can be removed, renamed (merging into an existing one) and deleted:"
        ),
        new_code_cell(
            "two = list(first.index[:2])\n"
            'ds.label(two, "maybe_odd")\n'
            'ds.rename_label("maybe_odd", "check")\n'
            'ds.unlabel(two, "check")\n'
            'ds.delete_label("check")\n'
            "ds.labels"
        ),
        new_markdown_cell(
            "## Filter\n\n"
            "`ds.query` returns the rows of a tab (`all`, `unlabeled`, `labeled`, `to_confirm`) "
            'narrowed by the widget\'s filters: `labels` (any of), `hard`, `created` (`"day"`, '
            '`"month"` or a range), `name` (file name or path substring), `labeled_by`, '
            "`group`."
        ),
        new_code_cell("ds.counts()"),
        new_code_cell('ds.query(labels=["3", "8"])[["id", "labels", "labeled_by", "labeled_at"]]'),
        new_code_cell(
            'ds.query(tab="unlabeled", name="digit-17", created="day", limit=5)[["id", "created_at"]]'
        ),
        new_markdown_cell(
            "## Versions\n\n"
            "A version is an immutable snapshot of the labels. `ds.use_version(name)` makes one "
            "current; the working state is kept as a version first, so nothing is lost."
        ),
        new_code_cell(
            'first_labels = ds.create_version(description="the first 30 digits")\nds.versions()'
        ),
        new_markdown_cell(
            "## Undo\n\n"
            "`ds.undo()` reverts the last operation; it works after a kernel restart too, "
            "because operations are journaled with the dataset."
        ),
        new_code_cell(
            "def labels_of(sample_id):\n"
            '    return list(ds.to_pandas().set_index("id").loc[sample_id, "labels"])\n\n\n'
            "sample = first.index[0]\n"
            'ds.label([sample], "9")  # a slip of the finger\n'
            'print(sample, "before undo:", labels_of(sample))\n'
            "ds.undo()\n"
            'print(sample, "after undo: ", labels_of(sample))'
        ),
        new_markdown_cell(
            "## Get the labels out\n\n"
            "`ds.to_pandas()` has one row per sample (labels, who labeled it and when, where the "
            "label came from, hard-example flags, image size once decoded, …)."
        ),
        new_code_cell(
            "df = ds.to_pandas()\n"
            'df[df["labels"].map(len) > 0][["id", "labels", "source", "labeled_by"]].head()'
        ),
        new_markdown_cell(
            "Exports write ImageFolder trees, CSV, COCO JSON or Pascal VOC files (`.txt`/`.xml` "
            "next to copies of the images: the layout `jlabel.open` reads back). "
            "`ds.to_torch()` gives a `torch.utils.data.Dataset` of (image tensor, target)."
        ),
        new_code_cell(
            "import tempfile\n\n"
            'out = Path(tempfile.mkdtemp(prefix="jlabel-export-"))\n'
            'print(ds.export(out / "labels.csv", format="csv"))\n'
            'print(ds.export(out / "imagefolder"))\n'
            "train = ds.to_torch(image_size=32)\n"
            "image, target = train[0]\n"
            "print(train, tuple(image.shape), train.classes[target])"
        ),
    ]


def auto_labeling() -> list:
    return [
        new_markdown_cell(
            "# Auto-labeling\n\n"
            "Label 5 images per class, let a model propose labels for the rest, review the "
            "proposals in the **To Be Confirmed** tab and confirm them. The sample digits come "
            "with their true labels, so we can measure how precise the accepted labels really "
            "are. The model trains in this kernel, on the GPU when there is one."
        ),
        new_code_cell(SETUP),
        new_markdown_cell(
            "This notebook works on a fresh copy of the images, so it can be run again from the "
            "top. `JLABEL_DEMO_LIMIT` (an environment variable) keeps only the first N images, "
            "for a quick run."
        ),
        new_code_cell(
            "import shutil\n"
            "import tempfile\n\n"
            'limit = int(os.environ.get("JLABEL_DEMO_LIMIT", "0")) or None\n'
            "truth = truth.iloc[:limit]\n"
            'work = Path(tempfile.mkdtemp(prefix="jlabel-digits-"))\n'
            "for sample_id in truth.index:\n"
            "    (work / sample_id).parent.mkdir(parents=True, exist_ok=True)\n"
            "    shutil.copy(DATA / sample_id, work / sample_id)\n"
            "ds = jlabel.open(work)\n"
            "ds.counts()"
        ),
        new_markdown_cell("## Label 5 images per class"),
        new_code_cell(
            "seed = truth.groupby(truth).head(5)\n"
            "for digit, ids in seed.groupby(seed).groups.items():\n"
            "    ds.label(list(ids), digit)\n"
            "ds.label_counts()"
        ),
        new_markdown_cell(
            "`measure` compares the proposals with the truth. A proposal that is not marked "
            "*hard* is one the model is sure of at the calibrated threshold (fitted on held-out "
            "labeled images to reach the target precision, 95% by default): these are the ones "
            "you would accept in one click."
        ),
        new_code_cell(
            "def measure(ds, job):\n"
            '    rows = ds.query(tab="to_confirm")\n'
            '    proposed = rows["proposed_labels"].map(lambda names: names[0] if len(names) else "")\n'
            '    right = (proposed.to_numpy() == truth.loc[rows["id"]].to_numpy())\n'
            '    sure = ~rows["hard"].to_numpy(dtype=bool)\n'
            "    return pd.Series({\n"
            '        "proposals": len(rows),\n'
            '        "auto-accepted (not hard)": int(sure.sum()),\n'
            '        "share auto-accepted": sure.mean() if len(rows) else 0.0,\n'
            '        "measured precision of auto-accepted": right[sure].mean() if sure.any() else float("nan"),\n'
            '        "accuracy of all proposals": right.mean() if len(rows) else float("nan"),\n'
            '        "estimated precision (job)": job.result.get("estimated_precision"),\n'
            "    })"
        ),
        new_markdown_cell(
            "## Fast: learn from the labeled images only\n\n"
            "`auto_label` returns a `Job` at once and runs in a background thread (the notebook "
            "and the widget stay usable; a progress bar shows below). `job.wait()` blocks until "
            "it is done."
        ),
        new_code_cell('fast = ds.auto_label(mode="fast")\nfast.wait()\nfast.result'),
        new_code_cell("measure(ds, fast)"),
        new_markdown_cell(
            "## Precise: also learn from the unlabeled images\n\n"
            "Semi-supervised (pseudo-labels with consistency under augmentation): slower, "
            "usually more images above the threshold. Its proposals replace the fast ones."
        ),
        new_code_cell('precise = ds.auto_label(mode="precise")\nprecise.wait()\nprecise.result'),
        new_code_cell("measure(ds, precise)"),
        new_markdown_cell(
            "## Review the To Be Confirmed tab\n\n"
            "The widget opens on it when there are proposals: surest first, hard examples "
            "marked and last. Confirm all, confirm a selection, edit or reject."
        ),
        new_code_cell('ds.labeler(tab="to_confirm")'),
        new_code_cell(
            'ds.query(tab="to_confirm")[["id", "proposed_labels", "proposed_scores", "hard", "hardness"]].head()'
        ),
        new_markdown_cell("Confirm the proposals the model is sure of:"),
        new_code_cell(
            'sure = ds.query(tab="to_confirm", hard=False)\n'
            'ds.confirm(list(sure["id"]))\n'
            "ds.counts()"
        ),
        new_markdown_cell(
            "## Hard examples\n\n"
            "What is left is marked hard: below the threshold, or otherwise uncertain (highest "
            "`hardness` first is a good order to look at them). Here the truth plays the "
            "reviewer: edit the proposals that are wrong, then confirm; `ds.reject(ids)` would "
            "drop proposals instead."
        ),
        new_code_cell(
            'hard = ds.query(tab="to_confirm", hard=True).sort_values("hardness", ascending=False)\n'
            'hard[["id", "proposed_labels", "proposed_scores", "hardness"]].head(10)'
        ),
        new_code_cell(
            'proposed = hard["proposed_labels"].map(lambda names: names[0] if len(names) else "")\n'
            'wrong = hard[proposed.to_numpy() != truth.loc[hard["id"]].to_numpy()]\n'
            'print(f"{len(wrong)} of {len(hard)} hard examples had a wrong proposal")\n'
            'for sample_id in wrong["id"]:\n'
            "    ds.set_proposal([sample_id], truth[sample_id])\n"
            'ds.confirm(list(hard["id"]))\n'
            "ds.counts()"
        ),
        new_markdown_cell(
            "## How good are the labels now?\n\n"
            "Every label records where it came from (`source`: `manual` or `auto`) and who "
            "confirmed it."
        ),
        new_code_cell(
            "df = ds.to_pandas()\n"
            'df["correct"] = [list(names) == [truth[i]] for i, names in zip(df["id"], df["labels"])]\n'
            'df.groupby("source")["correct"].agg(["count", "mean"])'
        ),
        new_code_cell('pd.DataFrame(ds.job_history())[["kind", "status", "params", "result"]]'),
    ]


def s3() -> list:
    return [
        new_markdown_cell(
            "# A dataset on S3\n\n"
            "The same dataset, with its images and its `.jlabel/` store in an S3 bucket "
            "(AWS, or any S3-compatible server: MinIO, Ceph, moto, …). `storage_options` go "
            "to [s3fs](https://s3fs.readthedocs.io); credentials come from the usual AWS "
            "environment variables or config files.\n\n"
            "Set `JLABEL_S3_ENDPOINT` (e.g. `http://127.0.0.1:9000`) for a non-AWS server and "
            "`JLABEL_S3_BUCKET` to an existing bucket you may write to."
        ),
        new_code_cell(SETUP),
        new_code_cell(
            "import uuid\n\n"
            "import fsspec\n\n"
            'endpoint = os.environ.get("JLABEL_S3_ENDPOINT")\n'
            'bucket = os.environ.get("JLABEL_S3_BUCKET", "jlabel-demo")\n'
            'storage_options = {"endpoint_url": endpoint} if endpoint else {}\n'
            'root = f"s3://{bucket}/digits-{uuid.uuid4().hex[:8]}"\n'
            'fs = fsspec.filesystem("s3", **storage_options)\n'
            "root"
        ),
        new_markdown_cell("## Copy the sample images up"),
        new_code_cell(
            'limit = int(os.environ.get("JLABEL_DEMO_LIMIT", "0")) or None\n'
            "truth = truth.iloc[:limit]\n"
            'fs.put([str(DATA / i) for i in truth.index], [f"{root}/{i}" for i in truth.index])\n'
            "len(fs.ls(root))"
        ),
        new_markdown_cell(
            "## Open, label, query: the same calls as on a local folder\n\n"
            "Each call returns once its change is written to S3."
        ),
        new_code_cell(
            "ds = jlabel.open(root, storage_options=storage_options)\n"
            "seed = truth.groupby(truth).head(5)\n"
            "for digit, ids in seed.groupby(seed).groups.items():\n"
            "    ds.label(list(ids), digit)\n"
            "ds.counts()"
        ),
        new_code_cell("ds.labeler()"),
        new_markdown_cell("The store is a few objects under the prefix's `.jlabel/`:"),
        new_code_cell('sorted(p.split("/.jlabel/", 1)[1] for p in fs.find(f"{root}/.jlabel"))'),
        new_markdown_cell(
            "## Two kernels on one dataset\n\n"
            "A second `Dataset` object stands for a colleague's kernel. Each sees the other's "
            "work after `refresh()` (the widget refreshes on its own)."
        ),
        new_code_cell(
            'colleague = jlabel.open(root, storage_options=storage_options, user="colleague")\n'
            "more = truth.drop(seed.index).head(5)\n"
            "for digit, ids in more.groupby(more).groups.items():\n"
            "    colleague.label(list(ids), digit)\n"
            "ds.refresh()\n"
            'ds.query(labeled_by="colleague")[["id", "labels", "labeled_by"]]'
        ),
        new_markdown_cell("## Auto-label, confirm, version"),
        new_code_cell(
            'job = ds.auto_label(mode="fast")\n'
            "job.wait()\n"
            'sure = ds.query(tab="to_confirm", hard=False)\n'
            'ds.confirm(list(sure["id"]))\n'
            'ds.create_version(description="after auto-labeling")\n'
            "ds.counts()"
        ),
        new_markdown_cell(
            "## Export to the local disk\n\n"
            "Pascal VOC: copies of the images with `.txt` label files next to them, a folder "
            "`jlabel.open` reads back."
        ),
        new_code_cell(
            "import tempfile\n\n"
            'local = Path(tempfile.mkdtemp(prefix="jlabel-s3-export-")) / "voc"\n'
            'ds.export(local, format="voc")\n'
            "jlabel.open(local).counts()"
        ),
        new_markdown_cell(
            "To remove the demo prefix from the bucket: `fs.rm(root, recursive=True)`."
        ),
    ]


def write(name: str, cells: list) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for k, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same file
        cell["id"] = f"{name.split('-')[0]}-{k:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    write("01-quickstart", quickstart())
    write("02-auto-labeling", auto_labeling())
    write("03-s3", s3())
