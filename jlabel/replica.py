"""This kernel's replica of a dataset: the samples table rebuilt from the store, kept current.

The replica owns the table and the watermarks (per writer, the last journal record included);
it loads (newest readable snapshot + journal), commits (journal first, then apply), refreshes
(other kernels' records, applied in place when they commute with ours, else a replay in time
order) and compacts (the state as a new snapshot, then the journal it includes is retired).

Every state it adopts is built to the side and swapped in whole, so a failed load or refresh
leaves the state as it was. Records are checked (:func:`jlabel.ops.check`) before any of them is
applied; operations naming samples another kernel deleted apply to the rest (ops.py), so replay
never fails on them, and a compaction never writes a state that lacks an acknowledged record.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from jlabel import ops
from jlabel.codec import read_parquet, write_parquet
from jlabel.errors import JLabelError, NotFound, StorageError
from jlabel.store import Store
from jlabel.store.journal import Record
from jlabel.table import SampleTable

COMPACT_EVERY = 2000
"""Journal records of this writer after which it compacts into a snapshot (in a thread)."""
COMPACT_ON_OPEN = 200
"""Journal records replayed on open that make it compact (off the caller's path)."""
RECENT_KEPT = 5000
"""Applied records remembered to tell whether another kernel's older one commutes."""
_LOAD_TRIES = 20

Key = tuple[float, str, int]


@dataclass
class _State:
    """Everything a load builds before it is adopted in one step."""

    table: SampleTable
    gen: int = 0
    watermarks: dict[str, int] = field(default_factory=dict)
    snapshot_watermarks: dict[str, int] = field(default_factory=dict)
    last_key: Key = (0.0, "", -1)
    recent: list[tuple[Key, frozenset[str] | None]] = field(default_factory=list)
    replayed: int = 0


class Replica:
    """The table of one open dataset and the engine that keeps it durable and current."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.RLock()
        """Held while the table is read or changed; callers hold it across a read + commit."""
        self._state = _State(SampleTable())
        self._stale = True  # the journal read position is unknown: the next refresh reloads
        self._compactor: threading.Thread | None = None
        self._compact_lock = threading.Lock()

    @property
    def table(self) -> SampleTable:
        """The current table (read it under `lock`)."""
        return self._state.table

    @property
    def gen(self) -> int:
        """Generation of the snapshot the state was built on (or last written)."""
        return self._state.gen

    # ------------------------------------------------------------------ loading
    def load(self) -> int:
        """Rebuild the state from the store; returns the journal records replayed.

        A compactor retires journal records only after its newer snapshot exists, so a load that
        sees no newer snapshot after reading the journal saw every record.
        """
        with self.lock:
            for _ in range(_LOAD_TRIES):
                state = self._read_state()
                if not self._newer_snapshot(state.gen):
                    self._adopt(state)
                    return state.replayed
        raise StorageError(
            f"the snapshots of {self.store.url} kept changing while being read (other kernels "
            "compacting); open it again"
        )

    def _newer_snapshot(self, gen: int) -> bool:
        gens = self.store.snapshot_gens()
        return bool(gens) and gens[-1] > gen

    def _adopt(self, state: _State) -> None:
        self._state = state
        self._stale = False

    def _read_state(self) -> _State:
        """The newest readable snapshot plus the journal after it, built to the side.

        A damaged snapshot is set aside and the previous one is used with the journal files the
        last compaction kept, when that journal is complete; else a StorageError says what to do.
        """
        self._stale = True  # whatever happens, the journal is read from the start next time
        store = self.store
        fallback = False
        needed: dict[str, int] = {}  # what the damaged snapshots included
        while True:
            latest = store.read_latest_snapshot()
            if latest is None:
                state = _State(SampleTable())
                break
            gen, data = latest
            try:
                table, meta = read_parquet(data)
            except Exception as exc:  # any parse failure of bytes read whole is damage
                store.set_aside_snapshot(gen, f"{type(exc).__name__}: {exc}")
                for writer, seq in (store.read_marks(gen) or {}).items():
                    needed[writer] = max(needed.get(writer, -1), seq)
                fallback = True
                continue
            table.undo_stack = meta.get("undo_stack", [])
            table.current_version = meta.get("current_version")
            marks = {k: int(v) for k, v in meta.get("watermarks", {}).items()}
            state = _State(table, gen, dict(marks), dict(marks))
            break
        store.restart_journal(state.watermarks)
        records = store.read_journal(state.watermarks, kept=fallback)
        if fallback:
            _check_complete(records, state.snapshot_watermarks, needed, store.url)
        for record in records:
            ops.check(record.op, _where(record))
        for record in records:
            self._apply(state, record)
        state.replayed = len(records)
        return state

    # ------------------------------------------------------------------ applying
    def _apply(self, state: _State, record: Record) -> None:
        op = record.op
        if op["op"] == "use_version":
            state.table = self._version_state(state.table, op["name"])
        else:
            ops.apply(state.table, op)
        marks = state.watermarks
        marks[record.writer] = max(marks.get(record.writer, -1), record.seq)
        key = (record.t, record.writer, record.seq)
        state.last_key = max(state.last_key, key)
        state.recent.append((key, ops.touched(op)))
        del state.recent[:-RECENT_KEPT]

    def _version_state(self, current: SampleTable, name: str) -> SampleTable:
        try:
            table = self.version_table(name)
        except (NotFound, StorageError) as exc:  # replay never fails: keep what we have
            self.store.report(f"version {name!r} could not be loaded on replay ({exc})")
            return current
        table.undo_stack = current.undo_stack
        table.current_version = name
        return table

    def version_table(self, name: str) -> SampleTable:
        """The samples of version `name` as a table."""
        data = self.store.read_bytes(f"versions/{name}/samples.parquet")
        if data is None:
            raise NotFound(f"version {name!r} has no data in {self.store.url}")
        try:
            table, _ = read_parquet(data)
        except Exception as exc:
            raise StorageError(
                f"version {name!r} of {self.store.url} is damaged ({type(exc).__name__}: "
                f"{exc}); use another version"
            ) from exc
        return table

    def _commutes(self, record: Record) -> bool:
        """True if applying `record` now gives the state a replay in time order would give:
        nothing applied after its time touched the same samples (or the whole table)."""
        recent = self._state.recent
        key = (record.t, record.writer, record.seq)
        if recent and len(recent) == RECENT_KEPT and recent[0][0] > key:
            return False
        ids = ops.touched(record.op)
        for later, touched in reversed(recent):
            if later < key:
                break
            if ids is None or touched is None or not ids.isdisjoint(touched):
                return False
        return True

    # ------------------------------------------------------------------ committing
    def commit(self, op: ops.Op) -> Record:
        """Journal `op` durably, then apply it; returns its record. Callers validate first."""
        with self.lock:
            ops.check(op, "a new operation")
            record = self.store.append(op)
            try:
                self._apply(self._state, record)
            except Exception:  # journaled but not applied: rebuild from the store
                self.load()
                raise
        if self.store.seq >= COMPACT_EVERY:
            self.compact_in_background()
        return record

    # ------------------------------------------------------------------ refreshing
    def refresh(self) -> bool:
        """Pick up other kernels' records; returns True if the state changed.

        On any failure the state stays as it was (and the next refresh reloads).
        """
        with self.lock:
            if not self.store.local:
                self.store.check_exists()  # a deleted bucket lists as empty: say so instead
            before = dict(self._state.watermarks)
            if self._stale or self._newer_snapshot(self._state.gen):
                self.load()
                return self._state.watermarks != before  # a compaction alone changes nothing
            try:
                records = self.store.read_journal(self._state.watermarks)
                for record in records:
                    ops.check(record.op, _where(record))
            except BaseException:
                self._stale = True  # the read position moved past records not applied
                raise
            if not records:
                return False
            # Another kernel's older operations apply in place when they touch other samples
            # than what we did since (the usual case: two people, two pages); otherwise replay
            # everything in time order. A snapshot that appeared while we read may have taken
            # records with it: then reload too.
            if not self._newer_snapshot(self._state.gen) and all(map(self._commutes, records)):
                try:
                    for record in records:
                        self._apply(self._state, record)
                except Exception:
                    self._stale = True
                    self.load()
            else:
                self.load()
            return True

    # ------------------------------------------------------------------ compacting
    def compact_in_background(self) -> None:
        """Compact off the caller's path: a label action never waits for a snapshot."""
        with self.lock:
            if self._compactor is not None and self._compactor.is_alive():
                return
            # Not a daemon: the interpreter waits for it at exit, so a kernel that ends mid
            # compaction never tears down a thread inside pyarrow (that aborts the process).
            self._compactor = threading.Thread(target=self._compact_quietly, name="jlabel-compact")
            self._compactor.start()

    def _compact_quietly(self) -> None:
        with contextlib.suppress(JLabelError):  # the journal keeps everything; next one retries
            self.compact()

    def compact(self) -> bool:
        """Write the current state as a new snapshot and retire the journal it includes.

        Returns False when another kernel wrote a snapshot first (its journal is kept; nothing is
        lost, the next compaction retries).
        """
        store = self.store
        with self._compact_lock:  # one compaction at a time per replica
            with self.lock:
                self.refresh()
                state = self._state
                base, previous = state.gen, dict(state.snapshot_watermarks)
                frozen = state.table.copy()
                watermarks = dict(state.watermarks)
                old_writer = store.rotate_writer()
            data = write_parquet(frozen, {"watermarks": watermarks, "gen": base + 1})
            if not store.write_snapshot(base + 1, data):
                return False
            store.write_marks(base + 1, watermarks)
            if store.snapshot_gens()[-1] != base + 1:
                # Our number was free only because old snapshots get deleted: newer ones exist,
                # so ours is stale. Withdraw it and keep the journal (nothing is lost).
                store.delete(f"snapshots/{base + 1:08d}.parquet")
                return False
            with self.lock:
                if self._state is state:
                    state.gen = max(state.gen, base + 1)
                    state.snapshot_watermarks = watermarks
                with store.errors("clean up the journal"):
                    store.retire_journal(included=watermarks, previous=previous, own={old_writer})
                store.delete_snapshots_before(base + 1, keep=1)
            return True

    def close(self) -> None:
        """Finish a running background compaction, then release this kernel's journal file."""
        compactor = self._compactor
        if compactor is not None and compactor is not threading.current_thread():
            compactor.join()
        self.store.journal.close()

    @contextlib.contextmanager
    def reading(self) -> Iterator[SampleTable]:
        """The table, with the lock held (no commit or refresh swaps it meanwhile)."""
        with self.lock:
            yield self._state.table


def _where(record: Record) -> str:
    return f"journal record {record.seq} of writer {record.writer}"


def _check_complete(
    records: list[Record], base: dict[str, int], needed: dict[str, int], url: str
) -> None:
    """A fallback load's journal must hold every record after the older snapshot (`base`), up
    to what the damaged newer one included (`needed`), with no gap in any writer's sequence."""
    by_writer: dict[str, set[int]] = {w: set() for w in needed}
    for r in records:
        by_writer.setdefault(r.writer, set()).add(r.seq)
    for writer, seqs in by_writer.items():
        start = base.get(writer, -1) + 1
        end = max(max(seqs, default=-1), needed.get(writer, -1))
        if set(range(start, end + 1)) - seqs:
            raise StorageError(
                f"the newest snapshot of {url} is damaged (set aside under .jlabel/damaged/) and "
                "the journal since the previous one is incomplete, so the state cannot be "
                "rebuilt exactly. Restore .jlabel/ from a backup, or make a version current "
                "(see .jlabel/versions/): call jlabel.fsck(root) for details."
            )
