"""Paths that may be fsspec URLs: ``memory://ckpts``, ``file:///tmp/run``, ``s3://bucket/run`` ...

Checkpoint files, ModelCheckpoint folders, ``default_root_dir`` and logger
folders go through these few functions. A plain path (or a ``file://`` URL,
which becomes one) stays on the local code path, with its atomic save
(temporary file, fsync, rename). Any other URL is handled by the fsspec
filesystem for its protocol (``s3://`` needs s3fs installed, and so on),
imported only when such a URL is used.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import IO, Any

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


def normalize(path: str | os.PathLike[str]) -> str:
    """``path`` as a string: a ``file://`` URL as the local path it names, other URLs as they are."""
    text = os.fspath(path)
    if text.startswith("file://"):
        return text[len("file://") :] or "/"
    return text


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL of a filesystem other than the local one."""
    return bool(_URL.match(normalize(path)))


def filesystem(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """The fsspec filesystem of ``path`` and the path within it; a clear error for an unknown protocol."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:  # pragma: no cover - fsspec is a dependency
        raise ImportError(f"{path!s} is a URL, which needs fsspec: pip install fsspec") from None
    text = normalize(path)
    try:
        return url_to_fs(text)
    except (ImportError, ValueError) as error:
        protocol = text.split("://", 1)[0]
        raise ValueError(
            f"cannot use {text!r}: no filesystem for protocol {protocol!r} is installed ({error}); "
            "install the fsspec package for it (s3fs for s3://, gcsfs for gs://, adlfs for az://) or use a local path"
        ) from None


def join(base: str | os.PathLike[str], *parts: str) -> str:
    """``base`` and ``parts`` joined, with ``/`` inside a URL."""
    text = normalize(base)
    return posixpath.join(text, *parts) if is_remote(text) else os.path.join(text, *parts)


def makedirs(path: str | os.PathLike[str]) -> None:
    """Create folder ``path`` and its parents; nothing to do for ``""`` (the current folder)."""
    if not normalize(path):
        return
    if is_remote(path):
        fs, inner = filesystem(path)
        fs.makedirs(inner, exist_ok=True)
    else:
        os.makedirs(normalize(path), exist_ok=True)


def exists(path: str | os.PathLike[str]) -> bool:
    """Whether something (a broken link included) is at ``path``."""
    if is_remote(path):
        fs, inner = filesystem(path)
        return bool(fs.exists(inner))
    return os.path.lexists(normalize(path))


def isfile(path: str | os.PathLike[str]) -> bool:
    if is_remote(path):
        fs, inner = filesystem(path)
        return bool(fs.isfile(inner))
    return os.path.isfile(normalize(path))


def isdir(path: str | os.PathLike[str]) -> bool:
    if is_remote(path):
        fs, inner = filesystem(path)
        return bool(fs.isdir(inner))
    return os.path.isdir(normalize(path))


def listdir(path: str | os.PathLike[str]) -> list[str]:
    """The names (not paths) of the entries in folder ``path``; empty when it does not exist."""
    if not isdir(path):
        return []
    if is_remote(path):
        fs, inner = filesystem(path)
        return [posixpath.basename(entry.rstrip("/")) for entry in fs.ls(inner, detail=False)]
    return os.listdir(normalize(path))


def remove(path: str | os.PathLike[str]) -> None:
    """Delete the file at ``path`` if there is one."""
    if is_remote(path):
        fs, inner = filesystem(path)
        if fs.exists(inner):
            fs.rm(inner)
    elif os.path.lexists(normalize(path)):
        os.remove(normalize(path))


def modified_ns(path: str | os.PathLike[str]) -> int:
    """When ``path`` was last written, in nanoseconds (0 where the filesystem does not say)."""
    if not is_remote(path):
        return os.stat(normalize(path)).st_mtime_ns
    fs, inner = filesystem(path)
    try:
        return int(fs.modified(inner).timestamp() * 1e9)
    except (NotImplementedError, AttributeError, OSError):
        return 0


def open_file(path: str | os.PathLike[str], mode: str = "rb", **kwargs: Any) -> IO[Any]:
    """``open`` for a local path or a URL; folders for writing are the caller's business (:func:`makedirs`)."""
    if is_remote(path):
        fs, inner = filesystem(path)
        return fs.open(inner, mode, **kwargs)  # type: ignore[no-any-return]
    return open(normalize(path), mode, **kwargs)  # noqa: SIM115 - the caller closes it


def write_then_move(data: bytes, path: str | os.PathLike[str], temporary_name: str) -> None:
    """Write ``data`` to ``temporary_name`` beside the URL ``path``, then move it over ``path``.

    On filesystems whose move is a rename (local-like, memory, HDFS) a reader
    never sees half a file; on object stores (S3, GCS), where a move is a
    copy, an interrupted save still leaves the previous object whole, because
    the upload of the temporary one is what gets interrupted.
    """
    fs, inner = filesystem(path)
    parent = posixpath.dirname(inner)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    temporary = posixpath.join(parent, temporary_name)
    try:
        with fs.open(temporary, "wb") as handle:
            handle.write(data)
        fs.mv(temporary, inner)
    except BaseException:
        if fs.exists(temporary):
            fs.rm(temporary)
        raise
