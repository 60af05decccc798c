"""The local spool: where an accepted message waits while Redis cannot take it.

The spool is a directory of append-only segment files named ``<time_ns>-<pid>-<seq>.spool``,
so sorting the names gives the order they were started in. Each line is one encoded
Dramatiq message::

    <flag><crc32 of message, 8 hex digits> <message bytes>\\n

``flag`` is ``+`` while the line waits and ``-`` once the drainer has enqueued it (set in
place, one byte). A line whose checksum does not match, or a last line without its newline,
was torn by a crash while being written: it was never acknowledged, so it is skipped.
Encoded messages are compact JSON and hold no newline.

A writer (one per process) holds an exclusive ``flock`` on the segment it appends to, and
every append is ``fsync``'d before it returns, so a 200 answered after :meth:`Spool.append`
survives a crash. Concurrent appends share one fsync (group commit): while one thread
syncs, the others write, and the next fsync covers them all. A segment is created under a
hidden temporary name, locked, then renamed, so no drainer ever sees it unlocked. The
drainer (``receiver.drain``) seals the writer's segment, then takes the lock of any segment
it can (its own, or one left by a process that died) and deletes a segment only after every
line in it is enqueued.

All methods block on disk I/O: call them off the event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PENDING = b"+"
DONE = b"-"
SUFFIX = ".spool"
_HEADER = 10  # flag, 8 hex digits, space
# A hidden temporary segment older than this was left by a crash between create and rename.
_STALE_TMP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class SpoolLine:
    """One waiting message: where its line starts in the segment, and its bytes."""

    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SpoolSize:
    """Messages waiting in the spool, and the bytes its segments take on disk."""

    events: int
    bytes: int


def encode_line(data: bytes) -> bytes:
    """The spool line for ``data``. Raises ``ValueError`` if ``data`` holds a newline."""
    if b"\n" in data:
        raise ValueError("a spooled message must not contain a newline")
    return b"%s%08x %s\n" % (PENDING, zlib.crc32(data), data)


def parse_segment(buf: bytes) -> tuple[list[SpoolLine], int]:
    """The waiting lines of a segment's contents, and how many lines were torn or corrupt."""
    pending: list[SpoolLine] = []
    bad = 0
    offset = 0
    size = len(buf)
    while offset < size:
        end = buf.find(b"\n", offset)
        if end == -1:  # torn tail: the crash came before the newline
            bad += 1
            break
        flag = buf[offset : offset + 1]
        if end - offset >= _HEADER and flag in (PENDING, DONE) and buf[offset + 9] == 0x20:
            data = buf[offset + _HEADER : end]
            try:
                crc = int(buf[offset + 1 : offset + 9], 16)
            except ValueError:
                crc = -1
            if crc == zlib.crc32(data):
                if flag == PENDING:
                    pending.append(SpoolLine(offset, data))
            else:
                bad += 1
        else:
            bad += 1
        offset = end + 1
    return pending, bad


class _OpenSegment:
    """The segment a process appends to: its descriptor, how far it is written and how far
    it is known durable. Writes are serialised by :class:`Spool`; ``sync_lock`` serialises
    fsync and close, so one fsync covers every line written before it (group commit)."""

    __slots__ = ("closed", "failed", "fd", "sync_lock", "synced", "written")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.written = 0
        self.synced = 0
        self.closed = False
        self.failed = False
        self.sync_lock = threading.Lock()

    def sync_to(self, end: int) -> None:
        """Return once bytes up to ``end`` are fsync'd. Raises ``OSError`` if they may not be."""
        with self.sync_lock:
            if self.synced >= end:
                return
            if self.failed or self.closed:
                raise OSError("the spool segment failed before this line was made durable")
            target = self.written
            try:
                os.fsync(self.fd)
            except OSError:
                self.failed = True
                raise
            self.synced = target

    def close(self, keep: int | None = None) -> None:
        """Make what is written durable (cut back to ``keep`` bytes first, if given), then
        close, releasing the lock. Lines not made durable are reported failed."""
        with self.sync_lock:
            if self.closed:
                return
            try:
                if keep is not None:
                    os.ftruncate(self.fd, keep)
                    self.written = keep
                if not self.failed and self.synced < self.written:
                    os.fsync(self.fd)
                    self.synced = self.written
            except OSError:
                self.failed = True  # a torn tail fails its checksum and is skipped later
            finally:
                self.closed = True
                os.close(self.fd)


class Spool:
    """The spool directory as seen by one process: its writer, and access to all segments.

    :meth:`append` and :meth:`seal` are thread-safe; concurrent appends share fsyncs. The
    directory is created on first use; if it cannot be (e.g. the path is a regular file),
    :meth:`append` raises ``OSError``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._segment: _OpenSegment | None = None
        self._seq = itertools.count()

    def append(self, data: bytes) -> None:
        """Write ``data`` as one line and return once it is fsync'd.

        Raises ``OSError`` when it cannot be made durable (the caller must not acknowledge
        it), ``ValueError`` when ``data`` holds a newline.
        """
        line = encode_line(data)
        with self._lock:
            segment = self._segment if self._segment is not None else self._open_segment()
            start = segment.written
            try:
                _write_all(segment.fd, line)
            except OSError:
                # A partial line followed by the next append would corrupt that one too:
                # cut the segment back and start a new one next time.
                self._segment = None
                segment.close(keep=start)
                raise
            segment.written = end = start + len(line)
        try:
            segment.sync_to(end)
        except OSError:
            with self._lock:
                if self._segment is segment:
                    self._segment = None
            segment.close()
            raise

    def seal(self) -> bool:
        """Close the segment being written (if any), so it can be drained.

        Returns whether a segment was sealed; the next append starts a new one.
        """
        with self._lock:
            segment, self._segment = self._segment, None
        if segment is None:
            return False
        segment.close()
        return True

    def segments(self) -> list[Path]:
        """Every segment file, oldest first (the writer's own included)."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        self._remove_stale_temporaries(names)
        return [self.directory / name for name in names if name.endswith(SUFFIX)]

    def lock_segment(self, path: Path) -> LockedSegment | None:
        """Take ``path``'s lock without waiting; ``None`` if another writer or drainer has it,
        or it was deleted meanwhile."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_nlink == 0:  # drained and deleted while we were opening it
                os.close(fd)
                return None
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return LockedSegment(path, fd)

    def size(self) -> SpoolSize:
        """Messages still waiting and bytes on disk, over all segments (a snapshot)."""
        events = 0
        total = 0
        for path in self.segments():
            try:
                buf = path.read_bytes()
            except FileNotFoundError:
                continue
            total += len(buf)
            events += len(parse_segment(buf)[0])
        return SpoolSize(events, total)

    def accepting(self, min_free_bytes: int) -> bool:
        """Whether an append would be taken now, as far as can be seen without writing:
        the directory exists or can be made, is writable, and has ``min_free_bytes`` free."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not os.access(self.directory, os.W_OK | os.X_OK):
                return False
            disk = os.statvfs(self.directory)
        except OSError:
            return False
        return disk.f_bavail * disk.f_frsize >= min_free_bytes

    def _open_segment(self) -> _OpenSegment:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}{SUFFIX}"
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(tmp, self.directory / name)
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._segment = _OpenSegment(fd)
        return self._segment

    def _remove_stale_temporaries(self, names: list[str]) -> None:
        cutoff = time.time() - _STALE_TMP_SECONDS
        for name in names:
            if name.startswith(".") and name.endswith(".tmp"):
                path = self.directory / name
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()


class LockedSegment:
    """A segment whose lock this process holds, for draining. Close it when done."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def read_pending(self) -> list[SpoolLine]:
        """The lines not yet enqueued, in write order (torn or corrupt lines skipped)."""
        size = os.fstat(self._fd).st_size
        buf = os.pread(self._fd, size, 0)
        pending, bad = parse_segment(buf)
        if bad:
            log.warning("spool_lines_skipped", segment=self.path.name, lines=bad)
        return pending

    def mark_done(self, lines: list[SpoolLine]) -> None:
        """Flag ``lines`` as enqueued, so a drain that stops early does not repeat them.

        Not fsync'd: if the flag is lost, the line is enqueued again under the same receipt
        id, which the ledger records once.
        """
        for line in lines:
            os.pwrite(self._fd, DONE, line.offset)

    def remove(self) -> None:
        """Delete the segment (every line enqueued) and make the deletion durable."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        """Release the lock."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
