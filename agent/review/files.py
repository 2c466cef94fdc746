"""Files in the directories exfix owns (a plan bundle, a playbook run's directory), reached
without ever following a symbolic link.

A plan directory is often shared (a change share, a ticket's attachment folder), so someone
other than the operator may be able to put things in it. A link planted there must not make
exfix write outside it: ``plan.json.tmp`` linked to ``~/.bashrc``, ``hosts`` linked to
``C:\\Windows`` or ``/etc``, ``journal.jsonl`` linked to a file the operator can write.

:class:`OwnedDir` opens the directory once and reaches everything below it from that open
directory, one component at a time, with ``O_NOFOLLOW`` (POSIX ``openat``: Python's
``dir_fd``), so a link cannot be swapped in between a check and a use:

- a directory below it is opened ``O_DIRECTORY | O_NOFOLLOW``;
- a file is written whole under a fresh temporary name (``O_CREAT | O_EXCL``, which never
  follows a link) and renamed over its name: a rename replaces a link, never writes through it;
- a file is appended to or read ``O_NOFOLLOW``;
- the directory itself, the last component of the path the user named, is not a link either;
  the components above it are the user's own path and are followed as the system does.

A link found anywhere on the way is refused with :class:`~agent.errors.UnsafePathError` (exit
1), naming it; nothing is written through it. Where the platform has no ``dir_fd`` support
(Windows), each component is checked with ``lstat`` before it is used instead; that leaves a
window between the check and the use that only ``openat`` closes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from agent.errors import UnsafePathError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
# openat() and friends: without them every use goes by path, after an lstat check.
_AT = os.open in os.supports_dir_fd and os.stat in os.supports_dir_fd and _NOFOLLOW != 0


def _link_error(path: Path) -> UnsafePathError:
    return UnsafePathError(
        str(path),
        "is a symbolic link; exfix writes and reads nothing through a link here: remove it, "
        "or name the directory it points to",
    )


def _check_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"not a single path component: {name!r}")
    return name


def _is_link_error(exc: OSError) -> bool:
    # O_NOFOLLOW on a link: ELOOP (Linux), EMLINK (FreeBSD), EFTYPE (NetBSD); O_DIRECTORY on a
    # link to a file: ENOTDIR.
    return exc.errno in (errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", errno.ELOOP))


class OwnedDir:
    """An open directory and the files below it. Use as a context manager or call close()."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = False) -> OwnedDir:
        """The directory at ``path`` (its parents created when ``create``). Raises
        UnsafePathError when it is a link or not a directory, OSError when it cannot be opened."""
        directory = Path(path)
        if create:
            if directory.parent != directory:
                directory.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o755)
        try:
            info = os.lstat(directory)
        except FileNotFoundError:
            raise UnsafePathError(str(directory), "does not exist") from None
        if stat.S_ISLNK(info.st_mode):
            raise _link_error(directory)
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafePathError(str(directory), "is not a directory")
        if not _AT:
            return cls(directory, None)
        try:
            fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
        except OSError as exc:
            if _is_link_error(exc) or exc.errno == errno.ENOTDIR:
                raise _link_error(directory) from None
            raise
        return cls(directory, fd)

    def subdir(self, name: str, *, create: bool = False) -> OwnedDir:
        """The directory ``name`` right below this one (made when ``create``); never a link."""
        _check_name(name)
        path = self.path / name
        if create:
            try:
                if self._fd is not None:
                    os.mkdir(name, 0o755, dir_fd=self._fd)
                else:
                    os.mkdir(path, 0o755)
            except FileExistsError:
                pass
        if self._fd is None:
            return OwnedDir.open(path)
        try:
            fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=self._fd)
        except FileNotFoundError:
            raise UnsafePathError(str(path), "does not exist") from None
        except OSError as exc:
            if _is_link_error(exc):
                raise _link_error(path) from None
            if exc.errno == errno.ENOTDIR:
                raise self._not_a_directory(name) from None
            raise
        return OwnedDir(path, fd)

    def _not_a_directory(self, name: str) -> UnsafePathError:
        if self.is_link(name):
            return _link_error(self.path / name)
        return UnsafePathError(str(self.path / name), "is not a directory")

    # --- looking ---------------------------------------------------------------------------

    def _lstat(self, name: str) -> os.stat_result:
        if self._fd is not None:
            return os.stat(name, dir_fd=self._fd, follow_symlinks=False)
        return os.lstat(self.path / name)

    def is_link(self, name: str) -> bool:
        try:
            return stat.S_ISLNK(self._lstat(_check_name(name)).st_mode)
        except FileNotFoundError:
            return False

    def exists(self, name: str) -> bool:
        try:
            self._lstat(_check_name(name))
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        return sorted(os.listdir(self._fd if self._fd is not None else self.path))

    def links(self) -> Iterator[Path]:
        """Every symbolic link in this directory's tree (links are reported, never entered)."""
        for name in self.names():
            info = self._lstat(name)
            if stat.S_ISLNK(info.st_mode):
                yield self.path / name
            elif stat.S_ISDIR(info.st_mode):
                with self.subdir(name) as below:
                    yield from below.links()

    # --- reading and writing ---------------------------------------------------------------

    def _open(self, name: str, flags: int, mode: int = 0o644) -> int:
        _check_name(name)
        path = self.path / name
        try:
            if self._fd is not None:
                return os.open(name, flags | _NOFOLLOW | _CLOEXEC | _BINARY, mode, dir_fd=self._fd)
            if self.is_link(name):
                raise _link_error(path)
            return os.open(path, flags | _CLOEXEC | _BINARY, mode)
        except OSError as exc:
            if _is_link_error(exc):
                raise _link_error(path) from None
            raise

    def read(self, name: str) -> bytes:
        """The bytes of file ``name``. Raises UnsafePathError for a link, OSError otherwise."""
        fd = self._open(name, os.O_RDONLY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePathError(str(self.path / name), "is not a regular file")
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes, *, mode: int = 0o644) -> Path:
        """Replace file ``name`` with ``data``, whole: written under a fresh temporary name in
        this directory, flushed, then renamed over ``name`` (a reader never sees half a file).
        Refuses when ``name`` is a link or a directory."""
        _check_name(name)
        if self.is_link(name):
            raise _link_error(self.path / name)
        temporary = f".{name}.{secrets.token_hex(8)}.tmp"
        fd = self._open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            _write_all(fd, data)
            if self._fd is not None:
                os.replace(temporary, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
            else:
                os.replace(self.path / temporary, self.path / name)
        except BaseException:
            self._unlink_quietly(temporary)
            raise
        return self.path / name

    def create(self, name: str, data: bytes, *, mode: int = 0o644) -> Path:
        """A new file ``name`` holding ``data``; FileExistsError when the name is taken (by
        anything, a link included)."""
        _write_all(self._open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), data)
        return self.path / name

    def open_append(self, name: str, *, mode: int = 0o600) -> int:
        """A descriptor appending to file ``name`` (created ``mode`` when absent); the caller
        closes it."""
        fd = self._open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafePathError(str(self.path / name), "is not a regular file")
        return fd

    def open_lock(self, name: str) -> int:
        """A descriptor of file ``name`` (created when absent) to take an flock on."""
        return self._open(name, os.O_RDWR | os.O_CREAT, 0o600)

    def _unlink_quietly(self, name: str) -> None:
        try:
            if self._fd is not None:
                os.unlink(name, dir_fd=self._fd)
            else:
                os.unlink(self.path / name)
        except OSError:
            pass

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OwnedDir:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def owned_file(path: str | os.PathLike[str], *, create_parents: bool = True) -> tuple[OwnedDir, str]:
    """The directory holding ``path`` (its last component is then opened without following a
    link) and the file's name in it, for a file named by the user (``--journal``)."""
    file = Path(path)
    parent = file.parent
    if create_parents:
        parent.mkdir(parents=True, exist_ok=True)
    try:
        # The user's path up to the file: followed as the system does (like any tool would).
        fd = os.open(parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC) if _AT else None
    except OSError as exc:
        raise UnsafePathError(str(parent), f"cannot be opened: {exc.strerror or exc}") from None
    return OwnedDir(parent, fd), _check_name(file.name)


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd`` whole (os.write may write less), flush it to disk, close it."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
