"""SampleTable <-> Arrow/Parquet, vectorised (a million rows in well under a second).

The model's own format: the store only moves the bytes (it knows nothing of the table).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jlabel.table import SOURCES, SampleTable

_META_KEY = b"jlabel"
LIST_STR = pa.list_(pa.string())
LIST_F32 = pa.list_(pa.float32())


def _codes_to_strings(codes: np.ndarray, table: list[str]) -> pa.Array:
    dictionary = pa.array(table, pa.string())
    valid = codes >= 0
    indices = pa.array(np.where(valid, codes, 0).astype(np.int32), mask=~valid)
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())


def labels_column(table: SampleTable, rows: np.ndarray) -> pa.Array:
    """list<string> of each row's labels, in label-set order, built without a Python loop."""
    names = list(table.masks)
    if not names or not len(rows):
        offsets = np.zeros(len(rows) + 1, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array([], pa.string()))
    matrix = np.stack([table.masks[n][rows] for n in names], axis=1)
    row_idx, label_idx = np.nonzero(matrix)
    counts = np.bincount(row_idx, minlength=len(rows))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = pa.array(names, pa.string()).take(pa.array(label_idx))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def to_arrow(table: SampleTable, rows: np.ndarray | None = None) -> pa.Table:
    """The given rows (default: all alive rows) as an Arrow table with public column types."""
    if rows is None:
        rows = np.nonzero(table.alive)[0]
    proposed, proposed_rows = _sparse_rows(rows, table.proposals)
    boxes, box_json = _json_column(rows, table.boxes)
    proposed_boxes, proposed_box_json = _json_column(rows, table.proposed_boxes)
    source_codes = table.source[rows].astype(np.int32) - 1
    width = table.width[rows]
    height = table.height[rows]
    return pa.table(
        {
            "id": _ids(table, rows),
            "labels": labels_column(table, rows),
            "source": _codes_to_strings(source_codes, list(SOURCES[1:])),
            "labeled_by": _codes_to_strings(table.labeled_by[rows], table.users),
            "labeled_at": pa.array(table.labeled_at[rows], pa.timestamp("ns")).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "created_at": pa.array(table.created_at[rows], pa.timestamp("ns")).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "hard": pa.array(table.hard[rows]),
            "hardness": pa.array(table.hardness[rows], from_pandas=True),
            "group": _codes_to_strings(table.group[rows], table.groups),
            "proposed_labels": _list_column(
                proposed, [table.proposals[r][0] for r in proposed_rows], pa.string()
            ),
            "proposed_scores": _list_column(
                proposed, [table.proposals[r][1] for r in proposed_rows], pa.float32()
            ),
            "width": pa.array(width, mask=width < 0),
            "height": pa.array(height, mask=height < 0),
            "missing": pa.array(table.missing[rows]),
            "corrupt": pa.array(table.corrupt[rows]),
            "boxes": box_json.take(pa.array(boxes, mask=boxes < 0)),
            "proposed_boxes": proposed_box_json.take(
                pa.array(proposed_boxes, mask=proposed_boxes < 0)
            ),
            "size": pa.array(table.size[rows]),
            "mtime": pa.array(table.mtime[rows]),
            "label_mtime": pa.array(table.label_mtime[rows], from_pandas=True),
        }
    )


def _ids(table: SampleTable, rows: np.ndarray) -> pa.Array:
    if len(rows) > 10_000 and hasattr(table, "ids_arrow"):
        return table.ids_arrow().take(pa.array(rows))  # cached: no Python strings to convert
    return pa.array(table.ids[rows].tolist(), pa.string())


def _json_column(rows: np.ndarray, by_row: dict[int, Any]) -> tuple[np.ndarray, pa.Array]:
    """Positions into, and the JSON texts of, the rows of `rows` that `by_row` holds."""
    where, present = _sparse_rows(rows, by_row)
    return where, pa.array([json.dumps(by_row[r]) for r in present], pa.string())


def _sparse_rows(rows: np.ndarray, by_row: dict[int, Any]) -> tuple[np.ndarray, list[int]]:
    """For a per-row dict holding few rows: each position's index into the returned list of
    the rows of `rows` that have an entry (-1 where none), without a loop over `rows`."""
    where = np.full(len(rows), -1, dtype=np.int64)
    if not by_row:
        return where, []
    keys = np.fromiter(by_row, dtype=np.int64, count=len(by_row))
    positions = np.nonzero(np.isin(rows, keys))[0]
    where[positions] = np.arange(len(positions))
    return where, rows[positions].tolist()


def _list_column(where: np.ndarray, values: list[list[Any]], kind: pa.DataType) -> pa.Array:
    """A list column: `values[where[i]]` at position i, an empty list where `where[i]` is -1."""
    lengths = np.zeros(len(where), dtype=np.int32)
    has = where >= 0
    lengths[has] = [len(values[k]) for k in where[has].tolist()]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)]).astype(np.int32)
    flat = [v for k in where[has].tolist() for v in values[k]]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, kind))


def state_meta(table: SampleTable) -> dict[str, Any]:
    """The table state that is not a column (label set, undo stack, version): snapshot metadata."""
    return {
        "labels": table.labels,
        "undo_stack": table.undo_stack,
        "current_version": table.current_version,
    }


def write_parquet(table: SampleTable, extra: dict[str, Any]) -> bytes:
    """The table as Parquet bytes, with the label set, undo stack and `extra` in its metadata."""
    arrow = to_arrow(table)
    # Rows sorted by id: a reader then knows the id order (queries sort by id) without sorting.
    arrow = arrow.take(pc.sort_indices(arrow.column("id")))
    meta = {**state_meta(table), **extra, "sorted_ids": True}
    arrow = arrow.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    buf = io.BytesIO()
    # Unique strings gain nothing from dictionary encoding and it makes reading slower.
    dictionary = [c for c in arrow.column_names if c not in ("id", "boxes", "proposed_boxes")]
    pq.write_table(arrow, buf, compression="zstd", use_dictionary=dictionary)
    return buf.getvalue()


def read_parquet(data: bytes) -> tuple[SampleTable, dict[str, Any]]:
    """Inverse of :func:`write_parquet`: the table and the metadata dict.

    Columns are read and converted one at a time, so peak memory stays close to the size of
    the resulting table (a whole Arrow table of a million rows next to it would add ~170 MB).
    """
    parquet = pq.ParquetFile(io.BytesIO(data))
    meta = json.loads((parquet.schema_arrow.metadata or {}).get(_META_KEY, b"{}"))

    names = set(parquet.schema_arrow.names)

    def column(name: str) -> pa.ChunkedArray | None:
        if name not in names:  # a column added since the snapshot was written
            return None
        return parquet.read(columns=[name]).column(0)

    table = _from_columns(
        column, parquet.metadata.num_rows, meta.get("labels", []), sorted_ids=meta.get("sorted_ids")
    )
    pa.default_memory_pool().release_unused()
    return table, meta


def from_arrow(arrow: pa.Table, labels: list[str]) -> SampleTable:
    """A SampleTable from an Arrow table with the columns of :func:`to_arrow`."""
    names = set(arrow.column_names)
    return _from_columns(
        lambda n: arrow.column(n) if n in names else None, arrow.num_rows, labels, sorted_ids=False
    )


def _from_columns(
    col: Callable[[str], pa.ChunkedArray | None], n: int, labels: list[str], *, sorted_ids: bool
) -> SampleTable:
    table = SampleTable()
    for name in labels:
        table.masks[name] = np.zeros(0, dtype=bool)
    table.grow(n)
    ids = col("id").combine_chunks()
    id_list = ids.to_pylist()
    table.ids = np.asarray(id_list, dtype=object)
    table.alive[:] = True
    table.source[:] = _strings_to_codes(col("source"), list(SOURCES[1:])) + 1
    table.labeled_by[:] = _strings_to_codes(col("labeled_by"), table.users)
    table.labeled_at[:] = _timestamps(col("labeled_at"))
    table.created_at[:] = _timestamps(col("created_at"))
    table.group[:] = _strings_to_codes(col("group"), table.groups)
    for name in ("hard", "hardness", "missing", "corrupt", "size", "mtime", "label_mtime"):
        getattr(table, name)[:] = col(name).to_numpy()
    table.width[:] = col("width").fill_null(-1).to_numpy()
    table.height[:] = col("height").fill_null(-1).to_numpy()
    _read_labels(table, col("labels"))
    _read_sparse(table, col("proposed_labels"), col("proposed_scores"))
    _read_boxes(col("boxes"), table.set_boxes)
    _read_boxes(col("proposed_boxes"), table.set_proposed_boxes)
    # The index of all rows (all alive), built directly: much faster than rebuild_index().
    table.adopt_index(dict(zip(id_list, range(n), strict=True)), ids, sorted_ids=bool(sorted_ids))
    return table


def _strings_to_codes(column: pa.ChunkedArray, table: list[str]) -> np.ndarray:
    encoded = pc.dictionary_encode(column).combine_chunks()
    for value in encoded.dictionary.to_pylist():
        if value not in table:
            table.append(value)
    remap = np.asarray([table.index(v) for v in encoded.dictionary.to_pylist()] + [-1], np.int32)
    indices = encoded.indices.fill_null(len(remap) - 1).to_numpy(zero_copy_only=False)
    return remap[indices]


def _timestamps(column: pa.ChunkedArray) -> np.ndarray:
    as_int = column.cast(pa.timestamp("ns")).cast(pa.int64())
    values = as_int.fill_null(np.iinfo(np.int64).min).to_numpy()
    return values.view("datetime64[ns]")


def _read_labels(table: SampleTable, column: pa.ChunkedArray) -> None:
    labels = column.combine_chunks()
    flat = pc.list_flatten(labels)
    parents = pc.list_parent_indices(labels).to_numpy()
    if len(flat):
        encoded = pc.dictionary_encode(flat)
        codes = encoded.indices.to_numpy()
        for k, name in enumerate(encoded.dictionary.to_pylist()):
            mask = table.masks.get(name)
            if mask is None or len(mask) != len(table.ids):
                mask = table.masks[name] = np.zeros(len(table.ids), dtype=bool)
            mask[parents[codes == k]] = True
    for name in list(table.masks):
        if len(table.masks[name]) != len(table.ids):
            table.masks[name] = np.zeros(len(table.ids), dtype=bool)
    table.n_labels[:] = np.bincount(parents, minlength=len(table.ids)) if len(flat) else 0


def _read_sparse(
    table: SampleTable, proposed: pa.ChunkedArray, proposed_scores: pa.ChunkedArray
) -> None:
    proposed = proposed.combine_chunks()
    has = pc.list_value_length(proposed).fill_null(0).to_numpy() > 0
    if has.any():
        scores = proposed_scores.combine_chunks()
        for row in np.nonzero(has)[0].tolist():
            table.set_proposal(row, proposed[row].as_py(), scores[row].as_py() or [])


def _read_boxes(column: pa.ChunkedArray | None, put: Callable[[int, list[dict]], None]) -> None:
    if column is None:
        return
    values = column.combine_chunks()
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    for row in np.nonzero(valid)[0].tolist():
        put(row, json.loads(values[row].as_py()))
