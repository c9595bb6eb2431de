"""The tutorial notebooks run top to bottom (nbclient, this venv's kernel) on sample digits.

Each notebook gets its own copy of the digits (`JLABEL_DEMO_DATA`) and its own temp folder
(`TMPDIR`), and the test then opens what the notebook left behind and checks it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import jlabel
from jlabel.demo import write_digits

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LIMIT = 300  # digits per run: enough for 5 labeled images per class and real auto-labeling
CELL_TIMEOUT = 600
QUICK_STEPS = 15  # training steps of the small CNN in the tests (default 300)

pytestmark = pytest.mark.slow

QUICK_AUTOLABEL = f"""
# Kernel startup file for the tests: the tutorials' auto-labeling calls train for fewer steps
# and use the small CNN without trying to download pretrained weights (what an offline
# machine falls back to anyway). Everything else runs as a user would run it.
import jlabel.autolabel as _autolabel
from jlabel.autolabel.cnn import TrainConfig as _TrainConfig

_start = _autolabel.start_auto_label


def _quick_start(ds, **kwargs):
    kwargs.setdefault("backbone", "cnn")
    kwargs.setdefault("train", _TrainConfig(steps={QUICK_STEPS}, fm_steps={QUICK_STEPS}))
    return _start(ds, **kwargs)


_autolabel.start_auto_label = _quick_start
"""


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    write_digits(folder, limit=LIMIT)
    return folder


@pytest.fixture
def env(digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A private copy of the digits and a private temp folder, inherited by the kernel."""
    data, tmp = tmp_path / "demo-data", tmp_path / "tmp"
    shutil.copytree(digits, data)
    tmp.mkdir()
    monkeypatch.setenv("JLABEL_DEMO_DATA", str(data))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.delenv("JLABEL_DEMO_LIMIT", raising=False)
    ipython = tmp_path / "ipython"
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    (ipython / "profile_default" / "startup" / "00-quick.py").write_text(QUICK_AUTOLABEL)
    monkeypatch.setenv("IPYTHONDIR", str(ipython))
    return {"data": data, "tmp": tmp, "cwd": tmp_path}


def run(name: str, cwd: Path) -> nbformat.NotebookNode:
    """Execute a notebook; a failing cell raises `CellExecutionError` with its traceback."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells), f"{name} has committed outputs"
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(cwd)}},
    ).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    """All text the notebook printed or displayed."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebooks_have_no_outputs_and_a_kernel():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["01-quickstart.ipynb", "02-auto-labeling.ipynb", "03-s3.ipynb"]
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        assert all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_quickstart(env):
    nb = run("01-quickstart.ipynb", env["cwd"])
    ds = jlabel.open(env["data"])
    counts = ds.label_counts()
    assert sum(counts.values()) == 30  # the first 30 digits, one label each
    assert "check" not in ds.labels and "maybe_odd" not in ds.labels
    df = ds.to_pandas().set_index("id")
    assert list(df.loc["digit-0000.png", "labels"]) == ["0"]  # the slip was undone
    assert len(ds.versions()) >= 1
    out = text_of(nb)
    assert "after undo:  ['0']" in out
    exports = list(env["tmp"].glob("jlabel-export-*"))
    assert len(exports) == 1
    assert (exports[0] / "labels.csv").read_text().count("\n") == 31


def test_auto_labeling(env):
    nb = run("02-auto-labeling.ipynb", env["cwd"])
    (work,) = env["tmp"].glob("jlabel-digits-*")
    ds = jlabel.open(work)
    assert ds.counts()["to_confirm"] == 0
    assert ds.counts()["labeled"] == LIMIT
    df = ds.to_pandas()
    assert set(df["source"]) == {"manual", "auto"}
    assert (df["source"] == "manual").sum() == 50
    kinds = [job["kind"] for job in ds.job_history()]
    assert kinds.count("auto_label") == 2
    assert "measured precision of auto-accepted" in text_of(nb)
    # the original folder was not touched: the notebook worked on a copy
    assert not (env["data"] / ".jlabel").exists()


@pytest.mark.s3
def test_s3(env, s3, monkeypatch):
    monkeypatch.setenv("JLABEL_S3_ENDPOINT", s3.endpoint_url)
    monkeypatch.setenv("JLABEL_S3_BUCKET", "jlabel-test")
    run("03-s3.ipynb", env["cwd"])
    import fsspec

    fs = fsspec.filesystem("s3", **s3.storage_options)
    (prefix,) = [p for p in fs.ls("jlabel-test") if p.rsplit("/", 1)[-1].startswith("digits-")]
    ds = jlabel.open(f"s3://{prefix}", storage_options=s3.storage_options)
    assert len(ds) == LIMIT
    assert ds.counts()["labeled"] >= 55  # 50 seed labels + the colleague's 5 + confirmed ones
    assert "colleague" in ds.users()
    (export,) = env["tmp"].glob("jlabel-s3-export-*")
    assert jlabel.open(export / "voc").counts()["labeled"] == ds.counts()["labeled"]


@pytest.mark.s3
def test_s3_without_an_endpoint_starts_a_local_server(env, monkeypatch):
    """A newcomer after `make demo` has no S3 endpoint: the notebook runs on a local server."""
    for name in ("JLABEL_S3_ENDPOINT", "JLABEL_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(env["tmp"] / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(env["tmp"] / "no-aws-credentials"))
    nb = run("03-s3.ipynb", env["cwd"])
    out = text_of(nb)
    assert "No JLABEL_S3_ENDPOINT set: started a local S3 server at http://127.0.0.1:" in out
    (export,) = env["tmp"].glob("jlabel-s3-export-*")
    assert jlabel.open(export / "voc").counts()["labeled"] >= 55


def test_notebooks_match_their_generator(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_build", NOTEBOOKS / "_build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    monkeypatch.setattr(build, "HERE", tmp_path)
    for name, text in [
        ("01-quickstart", build.QUICKSTART),
        ("02-auto-labeling", build.AUTO_LABELING),
        ("03-s3", build.S3),
    ]:
        build.write(name, text)
        fresh = (tmp_path / f"{name}.ipynb").read_text()
        assert fresh == (NOTEBOOKS / f"{name}.ipynb").read_text(), (
            f"run notebooks/_build.py ({name})"
        )
