"""Writes the tutorial notebooks, without outputs: `.venv/bin/python notebooks/_build.py`.

The notebooks are committed; edit the cells here, run this script, check with
`ruff check notebooks && ruff format --check notebooks`, and commit both.
Each notebook is one text: cells start with a line `%% md` or `%% code`.
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

# The sample data `make demo` writes: scikit-learn's handwritten digits as PNG files, and
# `_truth.csv` with the true digit of each image (it plays the part of a human labeler here).
DATA = Path(os.environ.get("JLABEL_DEMO_DATA", "../demo-data"))
if not (DATA / "_truth.csv").exists():
    write_digits(DATA)
truth = pd.read_csv(DATA / "_truth.csv", dtype=str).set_index("id")["digit"]
print(f"{DATA.resolve()}: {len(truth)} images")
"""

QUICKSTART = """
%% md
# jlabel quickstart

Open a folder of images as a dataset, label it in the widget or in Python, filter, keep
versions, undo, and get the labels out as a DataFrame, files or a PyTorch dataset. Everything
jlabel keeps lives next to the images, in the folder's `.jlabel/`.
%% code
{SETUP}
%% md
## Open the folder

`jlabel.open` creates the dataset on first use (its store goes in `DATA/.jlabel/`) and syncs:
every JPG/PNG/BMP file becomes a sample, and a same-name `.txt` (labels, one per line) or
`.xml` (Pascal VOC boxes) next to an image is imported. A sample's id is its path relative to
the folder.
%% code
ds = jlabel.open(DATA)
ds
%% md
Files added or removed later are picked up by `ds.sync()`. Running it again changes nothing,
and it never overwrites labels made in jlabel.
%% code
ds.sync()
%% md
## Label in the widget

Select thumbnails (click; shift-click for a range; space), then press a number key to apply
one of the first nine labels, or use the label panel. Arrows move, Enter opens the preview,
Ctrl+Z undoes; the `?` button lists every shortcut. Each action is saved before the widget
shows it.
%% code
ds.labeler()
%% md
## Label in Python

Everything the widget does is a plain call on `ds`. Here the first 30 images get their true
digit as label (a label name is 1–32 letters, digits, `-` or `_`).
%% code
first = truth.head(30)
for digit, ids in first.groupby(first).groups.items():
    ds.label(list(ids), digit)
ds.label_counts()
%% md
Labels can be removed, renamed (merging into an existing label) and deleted:
%% code
two = list(first.index[:2])
ds.label(two, "maybe_odd")
ds.rename_label("maybe_odd", "check")
ds.unlabel(two, "check")
ds.delete_label("check")
ds.labels
%% md
## Filter

`ds.query` returns the rows of a tab (`all`, `unlabeled`, `labeled`, `to_confirm`) narrowed by
the widget's filters: `labels` (any of), `hard`, `created` (`"day"`, `"month"` or a
`(start, end)` range), `name` (file name or path substring), `labeled_by`, `group`.
%% code
ds.counts()
%% code
ds.query(labels=["3", "8"])[["id", "labels", "labeled_by", "labeled_at"]]
%% code
ds.query(tab="unlabeled", name="digit-17", created="day", limit=5)[["id", "created_at"]]
%% md
## Versions

A version is an immutable snapshot of the labels. `ds.use_version(name)` makes one current;
the working state is kept as a version first, so switching never loses work.
%% code
ds.create_version(description="the first 30 digits")
ds.versions()
%% md
## Undo

`ds.undo()` reverts the last operation. It works after a kernel restart too: operations are
journaled with the dataset.
%% code
def labels_of(sample_id):
    return list(ds.to_pandas().set_index("id").loc[sample_id, "labels"])


sample = first.index[0]
ds.label([sample], "9")  # a slip of the finger
print(sample, "before undo:", labels_of(sample))
ds.undo()
print(sample, "after undo: ", labels_of(sample))
%% md
## Get the labels out

`ds.to_pandas()` has one row per sample: labels, who labeled it and when, where the label came
from (`source`), hard-example flags, the image size once decoded, …
%% code
df = ds.to_pandas()
df[df["labels"].map(len) > 0][["id", "labels", "source", "labeled_by"]].head()
%% md
`ds.export` writes an ImageFolder tree, a CSV or COCO JSON file, or Pascal VOC files (`.txt`
/ `.xml` next to copies of the images: a folder `jlabel.open` reads back). `ds.to_torch()` is
a `torch.utils.data.Dataset` of (image tensor, target).
%% code
import tempfile

out = Path(tempfile.mkdtemp(prefix="jlabel-export-"))
print(ds.export(out / "labels.csv", format="csv"))
print(ds.export(out / "imagefolder"))
train = ds.to_torch(image_size=32)
image, target = train[0]
print(train, tuple(image.shape), train.classes[target])
"""

AUTO_LABELING = """
%% md
# Auto-labeling

Label 5 images per class, let a model propose labels for the rest, review the proposals in the
**To Be Confirmed** tab and confirm them. The sample digits come with their true labels, so we
can measure how precise the accepted labels really are. The model trains in this kernel, on
the GPU when there is one.
%% code
{SETUP}
%% md
This notebook works on a fresh copy of the images, so it can be run again from the top. The
environment variable `JLABEL_DEMO_LIMIT` keeps only the first N images, for a quick run.
%% code
import shutil
import tempfile

limit = int(os.environ.get("JLABEL_DEMO_LIMIT", "0")) or None
truth = truth.iloc[:limit]
work = Path(tempfile.mkdtemp(prefix="jlabel-digits-"))
for sample_id in truth.index:
    shutil.copy(DATA / sample_id, work / sample_id)
ds = jlabel.open(work)
ds.counts()
%% md
## Label 5 images per class
%% code
seed = truth.groupby(truth).head(5)
for digit, ids in seed.groupby(seed).groups.items():
    ds.label(list(ids), digit)
ds.label_counts()
%% md
`measure` compares the proposals with the truth. A proposal not marked *hard* is one the model
is sure of at the calibrated threshold (fitted on held-out labeled images to reach the target
precision, 95% by default): the ones you would accept in one click.
%% code
def first_label(names):
    return names[0] if len(names) else ""


def measure(ds, job):
    rows = ds.query(tab="to_confirm")
    right = rows["proposed_labels"].map(first_label).to_numpy() == truth[rows["id"]].to_numpy()
    sure = ~rows["hard"].to_numpy(dtype=bool)
    return pd.Series(
        {
            "proposals": len(rows),
            "auto-accepted (not hard)": int(sure.sum()),
            "share auto-accepted": sure.mean(),
            "measured precision of auto-accepted": right[sure].mean() if sure.any() else None,
            "accuracy of all proposals": right.mean(),
            "estimated precision (job)": job.result.get("estimated_precision"),
        }
    )
%% md
## Fast: learn from the labeled images only

`auto_label` returns a `Job` at once and runs in a background thread, so the notebook and the
widget stay usable (a progress bar shows below the cell). `job.wait()` blocks until it is done.
%% code
fast = ds.auto_label(mode="fast")
fast.wait()
fast.result
%% code
measure(ds, fast)
%% md
## Precise: also learn from the unlabeled images

Semi-supervised (pseudo-labels with consistency under augmentation): slower, and usually more
images above the threshold. Its proposals replace the fast ones.
%% code
precise = ds.auto_label(mode="precise")
precise.wait()
precise.result
%% code
measure(ds, precise)
%% md
## Review the To Be Confirmed tab

Surest first, hard examples marked and last. In the widget: confirm all, confirm the
selection, edit, or reject.
%% code
ds.labeler(tab="to_confirm")
%% code
columns = ["id", "proposed_labels", "proposed_scores", "hard", "hardness"]
ds.query(tab="to_confirm")[columns].head()
%% md
## Check a random sample

The estimated precision above comes from the few labeled images. When it is not enough to
certify the target (the job's `notes` say so), or to see for yourself, review a random sample:
`sample_proposals(20)` draws 20 proposals (the widget's *Check a random sample* shows them
alone); confirm the right ones, edit or reject the wrong ones, and `sample_check()` estimates the
precision of the rest from how many were right. Here the truth plays the reviewer.
%% code
sample = ds.sample_proposals(20, seed=0)
proposed = ds.query(tab="to_confirm", ids=sample).set_index("id")["proposed_labels"]
for sample_id, names in proposed.items():
    if list(names) != [truth[sample_id]]:
        ds.set_proposal([sample_id], truth[sample_id])  # wrong: fix it, then confirm
ds.confirm(sample)
ds.sample_check()
%% md
Confirm the proposals the model is sure of:
%% code
sure = ds.query(tab="to_confirm", hard=False)
ds.confirm(list(sure["id"]))
ds.counts()
%% md
## Hard examples

What is left is marked hard: under the threshold, or otherwise uncertain (the highest
`hardness` first is a good order to review them). Here the truth plays the reviewer: it edits
the wrong proposals, then confirms; `ds.reject(ids)` would drop proposals instead.
%% code
hard = ds.query(tab="to_confirm", hard=True).sort_values("hardness", ascending=False)
hard[columns].head(10)
%% code
wrong = hard[hard["proposed_labels"].map(first_label).to_numpy() != truth[hard["id"]].to_numpy()]
print(f"{len(wrong)} of {len(hard)} hard examples had a wrong proposal")
for sample_id in wrong["id"]:
    ds.set_proposal([sample_id], truth[sample_id])
ds.confirm(list(hard["id"]))
ds.counts()
%% md
## How good are the labels now?

Every label records where it came from (`source`: `manual` or `auto`) and who confirmed it.
%% code
df = ds.to_pandas()
df["correct"] = [list(names) == [truth[i]] for i, names in df[["id", "labels"]].to_numpy()]
df.groupby("source")["correct"].agg(["count", "mean"])
%% code
pd.DataFrame(ds.job_history())[["kind", "status", "params", "result"]]
"""

S3 = """
%% md
# A dataset on S3

The same kind of dataset, with its images and its `.jlabel/` store in an S3 bucket: AWS, or any
S3-compatible server (MinIO, Ceph, moto, …). `storage_options` go to
[s3fs](https://s3fs.readthedocs.io); credentials come from the usual AWS environment variables
or configuration files.

Where it runs:
- `JLABEL_S3_ENDPOINT` set (e.g. `http://127.0.0.1:9000`): that server, with your credentials, and
  `JLABEL_S3_BUCKET` an existing bucket you may write to.
- `JLABEL_S3_ENDPOINT` set to `aws`: AWS itself.
- Nothing set: the notebook **starts a local S3-compatible server** in this kernel (moto's,
  installed with the demo) with a bucket `jlabel-demo`, so every cell runs on any machine. Its
  objects live in memory and go away with the kernel.
%% code
{SETUP}
%% code
import uuid

import fsspec

endpoint = os.environ.get("JLABEL_S3_ENDPOINT")
bucket = os.environ.get("JLABEL_S3_BUCKET", "jlabel-demo")
if endpoint == "aws":
    storage_options = {}
elif endpoint:
    storage_options = {"endpoint_url": endpoint}
else:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    storage_options = {"endpoint_url": endpoint_url, "key": "demo", "secret": "demo"}
    print(f"No JLABEL_S3_ENDPOINT set: started a local S3 server at {endpoint_url}")
fs = fsspec.filesystem("s3", **storage_options)
if not endpoint:
    fs.mkdir(bucket)
root = f"s3://{bucket}/digits-{uuid.uuid4().hex[:8]}"
root
%% md
## Copy the sample images up
%% code
limit = int(os.environ.get("JLABEL_DEMO_LIMIT", "0")) or None
truth = truth.iloc[:limit]
fs.put([str(DATA / i) for i in truth.index], [f"{root}/{i}" for i in truth.index])
len(fs.ls(root))
%% md
## Open, label, query: the same calls as on a local folder

Each call returns once its change is written to S3.
%% code
ds = jlabel.open(root, storage_options=storage_options)
seed = truth.groupby(truth).head(5)
for digit, ids in seed.groupby(seed).groups.items():
    ds.label(list(ids), digit)
ds.counts()
%% code
ds.labeler()
%% md
The store is a few objects under the prefix's `.jlabel/`. S3 cannot append to an object, so
each operation is one small journal object until the journal is folded into a snapshot.
%% code
from collections import Counter

Counter(path.split("/.jlabel/", 1)[1].split("/")[0] for path in fs.find(f"{root}/.jlabel"))
%% md
## Two kernels on one dataset

A second `Dataset` object stands in for a colleague's kernel. Each sees the other's work after
`refresh()` (the widget refreshes on its own).
%% code
colleague = jlabel.open(root, storage_options=storage_options, user="colleague")
more = truth.drop(seed.index).head(5)
for digit, ids in more.groupby(more).groups.items():
    colleague.label(list(ids), digit)
ds.refresh()
ds.query(labeled_by="colleague")[["id", "labels", "labeled_by"]]
%% md
## Auto-label, confirm, keep a version
%% code
job = ds.auto_label(mode="fast")
job.wait()
sure = ds.query(tab="to_confirm", hard=False)
ds.confirm(list(sure["id"]))
ds.create_version(description="after auto-labeling")
ds.counts()
%% md
## Export to the local disk

Pascal VOC: copies of the images with `.txt` label files next to them, a folder that
`jlabel.open` reads back.
%% code
import tempfile

local = Path(tempfile.mkdtemp(prefix="jlabel-s3-export-")) / "voc"
ds.export(local, format="voc")
jlabel.open(local).counts()
%% md
To remove the demo prefix from the bucket: `fs.rm(root, recursive=True)`.
"""


def cells(text: str) -> list:
    """Cells from a text whose cells start with `%% md` / `%% code` lines."""
    out = []
    for chunk in text.replace("{SETUP}", SETUP.strip()).split("\n%% ")[1:]:
        kind, _, body = chunk.partition("\n")
        make = new_markdown_cell if kind.strip() == "md" else new_code_cell
        out.append(make(body.strip("\n")))
    return out


def write(name: str, text: str) -> None:
    """Write `notebooks/<name>.ipynb` with stable cell ids, so regenerating is reproducible."""
    nb = new_notebook(cells=cells(text))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for k, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{k:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    write("01-quickstart", QUICKSTART)
    write("02-auto-labeling", AUTO_LABELING)
    write("03-s3", S3)
