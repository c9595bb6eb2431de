"""Listing a dataset root, VOC parsing, safe upload names and joins (jlabel.files)."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest

from jlabel.errors import ImageRejected, JLabelError, StorageError
from jlabel.files import (
    FileStat,
    LabelFile,
    list_files,
    parse_voc,
    safe_join,
    safe_upload_name,
    stat_file,
)

ODD_NAMES = [
    "with space.jpg",
    "ünïcödé 猫.png",
    "hash#1.jpg",
    "100%.bmp",
    "<img src=x onerror=alert(1)>.png",
]


def make_tree(root: Path) -> None:
    files = {
        "a.jpg": b"aa",
        "B.JPG": b"bbb",
        "c.jpeg": b"c",
        "d.bmp": b"d",
        "notes.gif": b"gif",
        "readme.md": b"x",
        "sub/e.png": b"eeee",
        "sub/e.txt": b"cat\ndog",
        "sub/e.xml": b"<annotation/>",
        "sub/deeper/f.jpg": b"f",
        "sub/orphan.txt": b"x",
        ".jlabel/snapshot.jpg": b"no",
        ".git/g.jpg": b"no",
        "sub/.hidden.jpg": b"no",
        "noext": b"no",
        **{f"odd/{n}": n.encode() for n in ODD_NAMES},
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


EXPECTED_IMAGES = {
    "a.jpg",
    "B.JPG",
    "c.jpeg",
    "d.bmp",
    "sub/e.png",
    "sub/deeper/f.jpg",
    *(f"odd/{n}" for n in ODD_NAMES),
}


def test_list_local_finds_images_and_label_files(tmp_path):
    make_tree(tmp_path)
    os.utime(tmp_path / "a.jpg", (1_600_000_000, 1_600_000_000))
    listing = list_files(fsspec.filesystem("file"), str(tmp_path))
    assert set(listing.images) == EXPECTED_IMAGES
    assert listing.images["a.jpg"] == FileStat(2, 1_600_000_000.0)
    assert listing.images["sub/e.png"].size == 4
    assert set(listing.label_files) == {
        ("sub/e", ".txt"),
        ("sub/e", ".xml"),
        ("sub/orphan", ".txt"),
    }
    txt = listing.label_file("sub/e.png", ".txt")
    assert isinstance(txt, LabelFile) and txt.path == "sub/e.txt"
    assert txt.mtime == (tmp_path / "sub/e.txt").stat().st_mtime
    assert listing.label_file("sub/e.png", ".xml").path == "sub/e.xml"
    assert listing.label_file("a.jpg", ".txt") is None


def test_list_local_accepts_file_urls_and_skips_symlinked_folders(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "loop").symlink_to(tmp_path)  # would recurse forever if followed
    listing = list_files(fsspec.filesystem("file"), "file://" + str(tmp_path))
    assert set(listing.images) == EXPECTED_IMAGES


def test_list_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(StorageError, match="cannot list the dataset folder"):
        list_files(fsspec.filesystem("file"), str(tmp_path / "nope"))


def test_list_non_local_filesystem_uses_find(tmp_path):
    fs = fsspec.filesystem("memory")
    root = "/jlabel-test-listing"
    for rel in [*EXPECTED_IMAGES, "sub/e.txt", "sub/e.xml", ".jlabel/x.jpg", "sub/.h.jpg", "n.gif"]:
        fs.pipe(f"{root}/{rel}", b"12345")
    fs.pipe(root + "-sibling/x.jpg", b"1")  # a prefix-sharing neighbour is not inside the root
    try:
        listing = list_files(fs, "memory://" + root)
        assert set(listing.images) == EXPECTED_IMAGES
        assert listing.images["a.jpg"].size == 5 and listing.images["a.jpg"].mtime > 0
        assert listing.label_file("sub/e.png", ".xml").path == "sub/e.xml"
        assert list_files(fs, root + "-missing").images == {}
    finally:
        fs.rm(root, recursive=True)
        fs.rm(root + "-sibling", recursive=True)


VOC = b"""<?xml version="1.0"?>
<annotation>
  <filename>e.png</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>cat</name><difficult>0</difficult>
    <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110.5</xmax><ymax>220</ymax></bndbox></object>
  <object><name> dog </name><difficult>1</difficult>
    <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
</annotation>"""


def test_parse_voc_objects():
    assert parse_voc(VOC) == [
        {"label": "cat", "xmin": 10.0, "ymin": 20.0, "xmax": 110.5, "ymax": 220.0,
         "difficult": False},
        {"label": "dog", "xmin": 1.0, "ymin": 2.0, "xmax": 3.0, "ymax": 4.0, "difficult": True},
    ]  # fmt: skip
    assert parse_voc(b"<annotation><filename>x</filename></annotation>") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<annotation><object>", "not well-formed"),
        (b"<annotation><object><name>a</name></object></annotation>", "no <bndbox>"),
        (
            b"<annotation><object><name>a</name><bndbox><xmin>x</xmin></bndbox></object>"
            b"</annotation>",
            "bad <xmin>",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
            b"<annotation>&lol;</annotation>",
            "DOCTYPE or ENTITY",
        ),
        ("<annotation/>".encode("utf-16"), "not UTF-8"),
    ],
)
def test_parse_voc_rejects_bad_documents(data, message):
    with pytest.raises(JLabelError, match=message):
        parse_voc(data)


def never_taken(_: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../x.jpg", "x.jpg"),
        ("/etc/x.jpg", "x.jpg"),
        ("..\\x.jpg", "x.jpg"),
        ("C:\\x.jpg", "x.jpg"),
        ("C:x.jpg", "x.jpg"),
        ("a/b/../../../x.png", "x.png"),
        ("\\\\server\\share\\y.BMP", "y.BMP"),
        (".hidden.jpg", "hidden.jpg"),
        ("  spaced .jpeg", "spaced .jpeg"),
        ("tab\t\nnew\x00line.jpg", "tabnewline.jpg"),
        ("ünïcödé 猫.png", "ünïcödé 猫.png"),
        ("<img src=x onerror=alert(1)>.png", "<img src=x onerror=alert(1)>.png"),
    ],
)
def test_safe_upload_name_keeps_only_a_safe_base_name(name, expected):
    out = safe_upload_name(name, never_taken)
    assert out == expected
    assert "/" not in out and "\\" not in out and not out.startswith(".")


@pytest.mark.parametrize("name", [".", "..", "", "/", "a/..", "...", "C:\\", ".jpg", "   "])
def test_safe_upload_name_refuses_names_with_nothing_left(name):
    with pytest.raises(ImageRejected, match=r"no usable file name|only \.jpg"):
        safe_upload_name(name, never_taken)


def test_safe_upload_name_refuses_other_extensions():
    with pytest.raises(ImageRejected, match=r"only \.jpg, \.jpeg, \.png, \.bmp"):
        safe_upload_name("clip.gif", never_taken)
    with pytest.raises(ImageRejected):
        safe_upload_name("noext", never_taken)


def test_safe_upload_name_appends_a_suffix_on_collision():
    taken = {"x.jpg", "x-1.jpg", "y.png"}
    assert safe_upload_name("../x.jpg", taken.__contains__) == "x-2.jpg"
    assert safe_upload_name("y.png", taken.__contains__) == "y-1.png"
    assert safe_upload_name("z.png", taken.__contains__) == "z.png"


def test_safe_upload_name_shortens_very_long_names():
    out = safe_upload_name("é" * 300 + ".jpg", never_taken)
    assert out.endswith(".jpg") and len(out.encode()) <= 204


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("a.jpg", "/data/a.jpg"),
        ("sub/./b.jpg", "/data/sub/b.jpg"),
        ("sub/../c.jpg", "/data/c.jpg"),
        (".", "/data"),
    ],
)
def test_safe_join_inside_root(rel, expected):
    assert safe_join("/data", rel) == expected
    assert safe_join("s3://bucket/prefix/", rel) == expected.replace("/data", "s3://bucket/prefix")


@pytest.mark.parametrize("rel", ["../x.jpg", "/etc/passwd", "a/../../x", "", "s3://b/x"])
def test_safe_join_refuses_escapes(rel):
    with pytest.raises(JLabelError):
        safe_join("/data", rel)


@pytest.mark.skipif(os.sep != "/", reason="POSIX file names")
@pytest.mark.parametrize("rel", ["..\\x.jpg", "C:\\x.jpg", "C:x.png", "a\\..\\..\\x.png"])
def test_safe_join_keeps_backslashes_and_colons_as_name_characters_on_posix(rel):
    # legal POSIX file names (one file directly under the root), not escapes
    assert safe_join("/data", rel) == "/data/" + rel


def test_list_without_stat_gives_names_only_and_stat_file_fills_in(tmp_path):
    make_tree(tmp_path)
    fs = fsspec.filesystem("file")
    listing = list_files(fs, str(tmp_path), stat=False)
    assert set(listing.images) == EXPECTED_IMAGES
    assert set(listing.images.values()) == {None}
    assert listing.label_file("sub/e.png", ".txt").path == "sub/e.txt"
    assert (
        stat_file(fs, str(tmp_path / "sub/e.png"))
        == list_files(fs, str(tmp_path)).images["sub/e.png"]
    )
    mem = fsspec.filesystem("memory")
    mem.pipe("/jlabel-stat-file/x.jpg", b"123")
    try:
        assert stat_file(mem, "memory:///jlabel-stat-file/x.jpg").size == 3
    finally:
        mem.rm("/jlabel-stat-file", recursive=True)


def test_folder_named_like_an_image_is_walked_not_listed(tmp_path):
    (tmp_path / "album.jpg").mkdir()
    (tmp_path / "album.jpg" / "inner.Jpg").write_bytes(b"x")
    for stat in (True, False):
        listing = list_files(fsspec.filesystem("file"), str(tmp_path), stat=stat)
        assert set(listing.images) == {"album.jpg/inner.Jpg"}
