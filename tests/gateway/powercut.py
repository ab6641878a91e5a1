"""A simulated power cut for SQLite: an APSW VFS that remembers every write not yet made durable
by fsync, and can produce the files as a disk would hold them after power loss at any moment.

The model (TESTING.md section 6): the page cache is lost, so every xWrite and xTruncate since
the file's last xSync is undone; what was synced stays. The shared-memory wal-index is not
durable and is dropped (SQLite rebuilds it from the WAL on the next open). Reordered or torn
sector writes are not modelled.

`ApswConnection` gives an APSW connection the small part of the sqlite3 DB-API that
sqlite-utils and the Store use, so the real Store code runs over this VFS unchanged.
"""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

_names = itertools.count()


@dataclass
class _Undo:
    offset: int
    old: bytes  # the bytes that were there (possibly shorter than the write: past the end)
    old_size: int


class CrashVFS(apsw.VFS):  # type: ignore[misc]
    """Passes I/O to the default VFS; at the `cut_after_ops`-th write/truncate/sync, takes
    the power-cut snapshot (into `snapshot_dir`) and lets everything after it happen unseen."""

    def __init__(self, snapshot_dir: Path, cut_after_ops: int) -> None:
        self.vfs_name = f"crash{next(_names)}"
        super().__init__(self.vfs_name, "")
        self.snapshot_dir = snapshot_dir
        self.cut_after_ops = cut_after_ops
        self.ops = 0
        self.cut = False
        self.pending: dict[str, list[_Undo]] = {}
        self._lock = threading.Lock()

    def xOpen(self, name: Any, flags: list[int]) -> apsw.VFSFile:  # noqa: N802 (APSW's name)
        if name is None:  # a temporary file: not part of the database
            return apsw.VFSFile("", name, flags)
        path = name if isinstance(name, str) else name.filename()
        return CrashFile(self, path, name, flags)

    def before_io(self) -> None:
        """Count one write/truncate/sync; at the chosen one, the power goes (once)."""
        with self._lock:
            self.ops += 1
            if not self.cut and self.ops >= self.cut_after_ops:
                self.power_cut()

    def power_cut(self) -> None:
        """Write the durable image of every file to `snapshot_dir`, as it would be after
        power loss now."""
        self.cut = True
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        for path, undo in self.pending.items():
            source = Path(path)
            if not source.exists():
                continue
            content = bytearray(source.read_bytes())
            for entry in reversed(undo):
                end = entry.offset + len(entry.old)
                content[entry.offset : end] = entry.old
                del content[entry.old_size :]
                content.extend(b"\0" * (entry.old_size - len(content)))
            (self.snapshot_dir / source.name).write_bytes(bytes(content))
        for path in self.pending:
            source = Path(path)
            if source.exists() and not (self.snapshot_dir / source.name).exists():
                shutil.copyfile(source, self.snapshot_dir / source.name)


class CrashFile(apsw.VFSFile):  # type: ignore[misc]
    def __init__(self, vfs: CrashVFS, path: str, name: Any, flags: list[int]) -> None:
        super().__init__("", name, flags)
        self.vfs = vfs
        self.path = path
        vfs.pending.setdefault(path, [])

    def _size(self) -> int:
        return int(super().xFileSize())

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        self.vfs.before_io()
        if not self.vfs.cut:
            size = self._size()
            old = (
                super().xRead(min(len(data), max(0, size - offset)), offset)
                if offset < size
                else b""
            )
            self.vfs.pending[self.path].append(_Undo(offset, bytes(old), size))
        super().xWrite(data, offset)

    def xTruncate(self, new_size: int) -> None:  # noqa: N802
        self.vfs.before_io()
        if not self.vfs.cut:
            size = self._size()
            if new_size < size:
                old = super().xRead(size - new_size, new_size)
                self.vfs.pending[self.path].append(_Undo(new_size, bytes(old), size))
        super().xTruncate(new_size)

    def xSync(self, flags: int) -> None:  # noqa: N802
        self.vfs.before_io()
        super().xSync(flags)
        if not self.vfs.cut:
            self.vfs.pending[self.path].clear()


class _Cursor:
    """The sqlite3.Cursor surface sqlite-utils reads: description, fetch*, iteration."""

    def __init__(self, conn: ApswConnection, cursor: apsw.Cursor, description: Any) -> None:
        self._conn = conn
        self._cursor = cursor
        self.description = description or None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._cursor)

    def fetchone(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._cursor.fetchone()
        return row

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cursor.fetchall())

    @property
    def lastrowid(self) -> int:
        return int(self._conn.raw.last_insert_rowid())

    @property
    def rowcount(self) -> int:
        return int(self._conn.raw.changes())


class ApswConnection:
    """An APSW connection in autocommit mode, shaped like a sqlite3 one (isolation_level=None)."""

    isolation_level = None
    autocommit = -1  # sqlite3.LEGACY_TRANSACTION_CONTROL

    def __init__(self, raw: apsw.Connection) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return not self.raw.get_autocommit()

    def _run(self, run: Callable[[apsw.Cursor], Any]) -> _Cursor:
        cursor = self.raw.cursor()
        seen: list[Any] = []

        def trace(traced: apsw.Cursor, _sql: str, _bindings: Any) -> bool:
            seen[:] = [traced.description]
            return True

        cursor.exec_trace = trace
        run(cursor)
        return _Cursor(self, cursor, seen[0] if seen else None)

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> _Cursor:
        return self._run(lambda cursor: cursor.execute(sql, parameters))

    def executemany(self, sql: str, rows: Any) -> _Cursor:
        rows = list(rows)
        if not rows:
            return _Cursor(self, self.raw.cursor(), None)
        return self._run(lambda cursor: cursor.executemany(sql, rows))

    def cursor(self) -> ApswConnection:
        return self

    def close(self) -> None:
        self.raw.close()


def connect_through(vfs: CrashVFS) -> Callable[[Path], ApswConnection]:
    """A `connect` for Store.open that opens the database over `vfs`."""

    def connect(path: Path) -> ApswConnection:
        return ApswConnection(apsw.Connection(str(path), vfs=vfs.vfs_name))

    return connect
