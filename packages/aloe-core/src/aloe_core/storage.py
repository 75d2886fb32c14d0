"""Where a command's files live: a local path or an object-store URI (``s3://``, ``gs://``), one API.

Every reader and writer of run folders (pipeline stages, manifests, reports, shards read by training)
goes through these helpers instead of ``pathlib``/``glob``, so ``--out s3://bucket/run`` and
``data.path=s3://bucket/run`` work like local folders. URIs are opened with ``pyarrow.fs`` (the same
filesystems Ray Data's ``filesystem=`` takes); local paths keep plain ``os`` semantics, so local runs
behave exactly as before.

Configuration comes from the environment, never from aloe's configs, so keys never reach a manifest or a
log: S3 reads ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (MinIO, moto, Ceph... on a custom endpoint),
``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and the AWS SDK's usual credential chain (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, profiles, instance roles); GCS its default credentials. A filesystem sent to
Ray workers (pickled) carries the endpoint and region but no key: workers find their own credentials
(on a cluster: the nodes' environment or the job's ``runtime_env``).

Object stores have no rename and no folders; what atomic commits become there is stated in
:mod:`aloe_core.atomic`.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

from aloe_core.errors import InputError

if TYPE_CHECKING:  # pyarrow is imported where a file is touched: `aloe --help` needs none of it
    import pyarrow.fs as pafs

PathLike = str | Path
_CACHE: dict[tuple[str, str, str | None], pafs.FileSystem] = {}
_LOCK = threading.Lock()


def is_uri(path: PathLike) -> bool:
    """Whether ``path`` names an object store or another remote filesystem (``scheme://``, not file://)."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def join(base: PathLike, *parts: str) -> str:
    """``base`` joined with ``parts`` (``/`` for URIs, the OS rule for local paths)."""
    if is_uri(base):
        return posixpath.join(str(base).rstrip("/"), *parts)
    return str(Path(base, *parts))  # what the pathlib code before this module produced


def location(path: PathLike) -> str | Path:
    """``path`` as code that also runs on local folders should hold it: a Path locally (what the code
    before this module used), the URI string otherwise (a Path would fold its ``//`` away)."""
    return str(path) if is_uri(path) else Path(path)


def name_of(path: PathLike) -> str:
    """The last component of ``path`` (a URI's key's last part)."""
    return posixpath.basename(str(path).rstrip("/"))


def parent_of(path: PathLike) -> str:
    """The folder (or prefix) holding ``path``."""
    text = str(path).rstrip("/")
    return posixpath.dirname(text) if is_uri(text) else os.path.dirname(os.path.abspath(text))


def _s3_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def resolve(path: PathLike) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem of ``path`` and the path on it (local paths made absolute).

    Raises:
        InputError: naming ``path`` when pyarrow cannot open that kind of URI.
    """
    import pyarrow.fs as pafs

    text = str(path)
    if not is_uri(text):
        local = text.removeprefix("file://")
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(local)).replace(os.sep, "/")
    parts = urlsplit(text)
    inner = f"{parts.netloc}{parts.path}".rstrip("/")
    endpoint = _s3_endpoint() if parts.scheme in ("s3", "s3a") else None
    key = (parts.scheme, parts.netloc, endpoint)
    with _LOCK:
        fs = _CACHE.get(key)
        if fs is None:
            fs = _CACHE[key] = _open_filesystem(text, parts.scheme, endpoint)
    return fs, inner


def _open_filesystem(uri: str, scheme: str, endpoint: str | None) -> pafs.FileSystem:
    import pyarrow.fs as pafs

    try:
        if scheme in ("s3", "s3a"):
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            if region is None:  # a custom endpoint has no AWS region to look up
                region = "us-east-1" if endpoint else pafs.resolve_s3_region(urlsplit(uri).netloc)
            return pafs.S3FileSystem(endpoint_override=endpoint, region=region)
        return pafs.FileSystem.from_uri(uri)[0]
    except (pafs.ArrowInvalid, OSError, ValueError) as exc:
        raise InputError(f"{uri}: not a path or URI pyarrow can open ({exc})") from None


def for_arrow(path: PathLike) -> tuple[str, pafs.FileSystem | None]:
    """``(path, filesystem)`` for pyarrow and Ray Data readers (``pq.read_table(p, filesystem=fs)``,
    ``ray.data.read_parquet(ps, filesystem=fs)``): a local path as given with None (their own local
    handling, unchanged), a URI as its path on the resolved filesystem."""
    if not is_uri(path):
        return str(path), None
    fs, inner = resolve(path)
    return inner, fs


def for_arrow_many(paths: list[str]) -> tuple[list[str], pafs.FileSystem | None]:
    """:func:`for_arrow` of files that share one filesystem (``ray.data.read_parquet(ps, filesystem=fs)``).

    Raises:
        InputError: when ``paths`` mix local files and URIs, or two stores.
    """
    pairs = [for_arrow(p) for p in paths]
    stores = {(is_uri(p), urlsplit(str(p)).scheme, urlsplit(str(p)).netloc) for p in paths}
    if len(stores) > 1:
        raise InputError(f"{paths[0]} and others: files to read together must be on one filesystem")
    return [p for p, _ in pairs], (pairs[0][1] if pairs else None)


def info(path: PathLike) -> pafs.FileInfo:
    fs, inner = resolve(path)
    return fs.get_file_info(inner)


def is_file(path: PathLike) -> bool:
    import pyarrow.fs as pafs

    return info(path).type == pafs.FileType.File


def is_dir(path: PathLike) -> bool:
    """A folder; on an object store, a prefix holding at least one object."""
    import pyarrow.fs as pafs

    return info(path).type == pafs.FileType.Directory


def exists(path: PathLike) -> bool:
    import pyarrow.fs as pafs

    return info(path).type != pafs.FileType.NotFound


def list_folders(path: PathLike) -> list[str]:
    """The folders (prefixes) directly under ``path`` (sorted); empty if it is missing."""
    import pyarrow.fs as pafs

    fs, inner = resolve(path)
    infos = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    names = sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.Directory)
    return [join(path, n) for n in names]


def list_files(path: PathLike, pattern: str = "*") -> list[str]:
    """The files directly under ``path`` whose names match ``pattern`` (sorted)."""
    import pyarrow.fs as pafs

    fs, inner = resolve(path)
    infos = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    names = sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.File)
    return [join(path, n) for n in names if fnmatch.fnmatchcase(n, pattern)]


def glob(pattern: str) -> list[str]:
    """Files matching ``pattern``; for URIs only the last component may hold wildcards."""
    if not is_uri(pattern):
        import glob as _glob

        return sorted(_glob.glob(pattern))
    folder, last = posixpath.split(pattern)
    if any(ch in folder for ch in "*?["):
        raise InputError(f"{pattern}: wildcards in a URI only in its last part (the file name)")
    return list_files(folder, last)


def open_input(path: PathLike) -> IO[bytes]:
    """A seekable binary reader of ``path`` (Parquet footers need random access)."""
    fs, inner = resolve(path)
    return fs.open_input_file(inner)


def read_bytes(path: PathLike) -> bytes:
    with open_input(path) as handle:
        return handle.read()


def read_text(path: PathLike) -> str:
    return read_bytes(path).decode("utf-8")


def open_output(path: PathLike) -> IO[bytes]:
    """A binary writer of ``path``, its folder made first (locally). On an object store the object
    appears whole when the stream closes (one PUT, or a multipart upload completed at close)."""
    fs, inner = resolve(path)
    if not is_uri(path):
        fs.create_dir(posixpath.dirname(inner), recursive=True)
    return fs.open_output_stream(inner)


def put_object(path: PathLike, data: bytes) -> None:
    """Write ``data`` to the object ``path`` whole: readers see the old object or the new one."""
    with open_output(path) as handle:
        handle.write(data)


def makedirs(path: PathLike) -> None:
    """Create a local folder (and parents); nothing on object stores, whose prefixes need no creation."""
    if not is_uri(path):
        os.makedirs(path, exist_ok=True)


def remove(path: PathLike) -> None:
    """Delete the file or the whole folder (prefix) ``path``; nothing if it is missing.

    On S3, pyarrow then writes an empty marker object ``PARENT/`` so that the parent folder still
    "exists"; it names a folder, holds no data, and no reader lists it as a file.
    """
    import pyarrow.fs as pafs

    fs, inner = resolve(path)
    kind = fs.get_file_info(inner).type
    if kind == pafs.FileType.Directory:
        fs.delete_dir(inner)
    elif kind == pafs.FileType.File:
        fs.delete_file(inner)


def list_tree(path: PathLike) -> list[pafs.FileInfo]:
    """Every file under ``path`` at any depth (sorted by path); empty if it is missing. Each FileInfo
    has ``path`` (on the filesystem :func:`resolve` gives), ``size`` and ``mtime``."""
    import pyarrow.fs as pafs

    fs, inner = resolve(path)
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True, allow_not_found=True))
    return sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)


_CHUNK = 8 << 20  # bytes per read/write while copying a file between filesystems


def upload_file(local: PathLike, path: PathLike) -> None:
    """Copy the local file ``local`` to ``path`` as one object (streamed, so a model shard of several GB
    never sits in memory; on an object store the object appears whole when the upload completes)."""
    import shutil

    with open(local, "rb") as source, open_output(path) as target:
        shutil.copyfileobj(source, target, _CHUNK)


def download_file(path: PathLike, local: PathLike) -> None:
    """Copy the file ``path`` (local or URI) to the local file ``local`` (its folder made first)."""
    import shutil

    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    with open_input(path) as source, open(local, "wb") as target:
        shutil.copyfileobj(source, target, _CHUNK)


def download_folder(path: PathLike, local: PathLike, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """Copy every file under ``path`` into the local folder ``local``, keeping the relative layout;
    returns the relative names copied. pyarrow's empty ``FOLDER/`` markers are no files and are skipped,
    and so are files whose name matches a pattern of ``exclude`` (``*.safetensors``)."""
    _, inner = resolve(path)
    names = []
    for item in list_tree(path):
        name = posixpath.relpath(item.path, inner)
        if any(fnmatch.fnmatchcase(posixpath.basename(name), p) for p in exclude):
            continue
        download_file(join(path, name) if is_uri(path) else item.path, Path(local, name))
        names.append(name)
    return names


def cache_root() -> Path:
    """Where local copies of URI folders live: ``$ALOE_CACHE_DIR``, else ``~/.cache/aloe`` (XDG)."""
    root = os.environ.get("ALOE_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "aloe")


def local_copy(path: PathLike, *, exclude: tuple[str, ...] = (), missing: str = "model folder") -> str:
    """``path`` as a local folder for libraries that only read local files (transformers'
    ``from_pretrained``, tokenizers): a local path as given; a URI folder (a model exported to
    ``s3://...``) downloaded once into :func:`cache_root` ``/uri/`` and that copy's path. ``exclude``
    leaves out files by name pattern (a driver that only tokenizes needs no weights); such a partial
    copy is cached apart from the whole one.

    The copy is named after the URI and its listing (every file's name, size and modification time), so
    a folder rewritten on the store is fetched again and an unchanged one never is, in every process
    that asks (each Ray worker, each node). It is downloaded into a hidden staging sibling and renamed
    into place: a concurrent reader sees no copy or a whole one; of two processes downloading at once,
    the second to finish discards its own. Old copies are not removed (delete the cache to free space).

    Raises:
        InputError: naming ``path`` (and ``missing``, what was expected there) when nothing is stored
            under it.
    """
    import hashlib
    import json
    import shutil
    import tempfile

    if not is_uri(path):
        return str(path)
    files = list_tree(path)
    if not files:
        raise InputError(f"{path}: {missing} not found (no file under this URI)")
    listing = [(i.path, i.size, i.mtime_ns) for i in files]
    key = [str(path).rstrip("/"), listing, *([sorted(exclude)] if exclude else [])]  # whole copies: as before
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    target = cache_root() / "uri" / f"{name_of(path)}-{digest}"
    if target.is_dir():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        download_folder(path, staging, exclude=exclude)
        staging.chmod(0o755)
        staging.rename(target)
    except OSError:
        if not target.is_dir():  # not a lost race with another process: a real failure
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)
