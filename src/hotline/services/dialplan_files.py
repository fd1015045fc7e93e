"""The rendered include files on disk: read them, replace them atomically, put the previous bytes back.

Asterisk reads these files only on ``dialplan reload`` / ``module reload app_queue.so``, but a reload (ours, or one
an admin types at the CLI, or an Asterisk restart) may come at any moment, so it must never see half a file: each
file is written to a temporary file in the same directory, flushed and fsynced, then renamed over the old one
(``os.replace`` is atomic on POSIX within a filesystem), and the directory is fsynced so the rename survives a
power cut. Blocking I/O: call these through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hotline.dialplan import EXTENSIONS_FILE, QUEUES_FILE, RenderedDialplan

FILE_NAMES = (EXTENSIONS_FILE, QUEUES_FILE)
DEFAULT_MODE = 0o644
"""Asterisk usually runs as another user than hotline and must be able to read the files."""

Snapshot = dict[str, bytes | None]
"""File name → its bytes, or None when the file did not exist."""


def as_bytes(rendered: RenderedDialplan) -> dict[str, bytes]:
    return {EXTENSIONS_FILE: rendered.extensions.encode("utf-8"), QUEUES_FILE: rendered.queues.encode("utf-8")}


def read_snapshot(directory: Path) -> Snapshot:
    """The current bytes of both files (None for a missing one), to restore them exactly if the reload fails."""
    snapshot: Snapshot = {}
    for name in FILE_NAMES:
        try:
            snapshot[name] = (directory / name).read_bytes()
        except FileNotFoundError:
            snapshot[name] = None
    return snapshot


def write_files(directory: Path, contents: Mapping[str, bytes | None]) -> None:
    """Replace each file atomically with its bytes; None removes the file (restoring "there was none")."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        path = directory / name
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            _replace_atomically(path, data)
    _fsync_directory(directory)


def _replace_atomically(path: Path, data: bytes) -> None:
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = DEFAULT_MODE
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, mode)  # mkstemp creates 0600
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
