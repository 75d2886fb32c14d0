"""Atomic writes: readers (and a rerun after a kill) see the old content or the new, never a mix.

Files are written to a hidden temporary sibling (``.NAME.<random>.tmp``) and moved into place with
``os.replace``; folders are built in a hidden staging sibling (``.NAME.tmp-<random>``) and renamed into
place. Both names start with ``.NAME.`` so a later run can recognise its own debris, and
:func:`remove_debris` (called by every command on its output before it writes) removes it.

**On object storage** (``s3://``, ``gs://``: see :mod:`aloe_core.storage`) there is no rename, but a
single object is written whole (one PUT, or a multipart upload that becomes visible only when it
completes): readers see the old object or the new, never a part. So the rule there is

1. a file (a manifest, a report, a metrics file) is one PUT of its full content: :func:`atomic_write_bytes`;
2. a folder (a stage's shards) is written under a fresh, unique attempt prefix
   (``NAME/attempt-<random>/``) that nobody reads yet;
3. its manifest entry, naming that attempt and every file in it with its sha256, is written last, as
   one PUT of the whole manifest: that PUT is the commit;
4. readers trust only the files the manifest lists (:mod:`aloe_core.manifest`), never a listing;
5. once its commits are done, a command deletes every attempt prefix its manifest does not list
   (:meth:`aloe_core.manifest.Manifest.remove_unlisted_attempts`): what a killed run left, or what a
   rerun replaced, so a resumed run leaves no debris (only pyarrow's empty ``FOLDER/`` markers of the
   folders that held them, see :func:`aloe_core.storage.remove`). After the commits, not before: a
   stage's folder then always holds its committed attempt when the old one goes.

A folder that readers open by name rather than through a manifest (an exported model, read by
``from_pretrained``) is uploaded by :func:`upload_dir`: each file one PUT, the file readers check for
(``config.json`` for a model) last, so a reader that finds it finds every other file too;
:func:`building_dir` builds such a folder locally and publishes it either way.

Local paths keep the rename-based writes above (same names, same bytes as before object storage).
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.storage import is_uri


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp sibling, fsync, ``os.replace``; on object storage one
    whole-object PUT)."""
    if is_uri(path):
        storage.put_object(path, data)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the result should read like any other output file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (keys in insertion order, a trailing newline) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def staging_dir(target: str | Path) -> Path:
    """A fresh hidden folder beside ``target`` to build its content in before :func:`publish_dir`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))


def publish_dir(staging: str | Path, target: str | Path) -> Path:
    """Move the finished ``staging`` folder to ``target``, replacing an existing folder with two renames
    (so ``target`` is never half-written), and make it readable like any other output folder (mkdtemp
    creates 0700 folders)."""
    staging, target = Path(staging), Path(target)
    staging.chmod(0o755)
    for path in staging.iterdir():
        if path.is_file():
            path.chmod(0o644)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old)
    return target


def upload_dir(local: str | Path, target: str, *, last: str) -> str:
    """Upload the finished local folder ``local`` to the URI ``target`` (which has no rename), so that a
    reader that sees ``target/last`` sees the whole new folder; returns ``target``.

    Order: the old ``last`` is deleted (readers stop trusting the old folder), every other file is put
    (one PUT each: no object is ever half-written), objects under ``target`` the new folder does not
    have (an older export's extra shards) are deleted, and ``last`` is put at the end: that PUT is the
    commit. A kill before it leaves a folder without ``last``, which a rerun overwrites.

    Raises:
        FileNotFoundError: ``local`` has no ``last`` file.
    """
    local = Path(local)
    if not (local / last).is_file():
        raise FileNotFoundError(f"{local / last}: the folder to upload has no {last}")
    names = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    storage.remove(storage.join(target, last))
    for name in names:
        if name != last:
            storage.upload_file(local / name, storage.join(target, name))
    _, inner = storage.resolve(target)
    for item in storage.list_tree(target):
        name = posixpath.relpath(item.path, inner)
        if name not in names:
            storage.remove(storage.join(target, name))
    storage.upload_file(local / last, storage.join(target, last))
    return target


@contextmanager
def building_dir(target: str | Path, *, last: str) -> Iterator[Path]:
    """A local folder to build the folder ``target`` in (a merged model, a RAG index), published when the
    block ends without an error and removed either way.

    Locally it is a hidden staging sibling renamed into place (:func:`publish_dir`); for a URI, a local
    scratch folder (``$TMPDIR``: it needs room for the whole folder) uploaded with ``last`` put at the
    end (:func:`upload_dir`), so readers that check ``target/last`` see the old folder or the new one.
    """
    remote = is_uri(target)
    if remote:
        staging = Path(tempfile.mkdtemp(prefix=f"aloe-{storage.name_of(target)}-"))
    else:
        staging = staging_dir(target)
    try:
        yield staging
        if remote:
            upload_dir(staging, str(target), last=last)
        else:
            publish_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# Names this module's writers give their temporary siblings of NAME: a file being written
# (``.NAME.<random>.tmp``), a stage folder being written (``.NAME.tmp``), a staging folder
# (``.NAME.tmp-<random>``) and the previous folder during the two renames of :func:`publish_dir`
# (``.NAME.old-<pid>``).
_SUFFIX = r"(?:[^.]+\.tmp|tmp|tmp-[^.]+|old-\d+)"
_DEBRIS = re.compile(rf"^\..+\.{_SUFFIX}$")
_PARKED = re.compile(r"^\.(?P<name>.+)\.old-\d+$")


def is_debris(name: str) -> bool:
    """Whether a file or folder name is one of the temporary names atomic writes use."""
    return _DEBRIS.match(name) is not None


def remove_debris(target: str | Path) -> list[Path]:
    """Remove what killed writes left of ``target`` and inside it; returns what was removed.

    Every command calls this on its output before writing, so a kill at any instant (inside a manifest
    write, between the two renames of :func:`publish_dir`, half-way through a stage's shards) leaves
    nothing behind once the command runs again. One exception keeps data: if a kill landed between
    :func:`publish_dir`'s renames, the previous folder (``.NAME.old-<pid>``) is renamed back to NAME
    instead of being deleted. Only one writer may use an output folder at a time (a second one's
    temporary files would be taken for debris).

    On object storage nothing is written under a temporary name, so there is nothing to remove here;
    unlisted attempt prefixes are removed by :meth:`aloe_core.manifest.Manifest.remove_unlisted_attempts`.
    """
    if is_uri(target):
        return []
    target = Path(target)
    removed: list[Path] = []
    if target.parent.is_dir():
        removed += _clear_siblings(target)
    if target.is_dir():
        for root, dirs, files in os.walk(target):
            for name in [*dirs, *files]:
                if is_debris(name):
                    path = Path(root) / name
                    if name in dirs and _restore_old(path):
                        continue
                    _remove(path)
                    removed.append(path)
            dirs[:] = [d for d in dirs if not is_debris(d)]
    return removed


def _clear_siblings(target: Path) -> list[Path]:
    removed = []
    for path in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if not re.fullmatch(rf"\.{re.escape(target.name)}\.{_SUFFIX}", path.name):
            continue
        if _restore_old(path):
            continue
        _remove(path)
        removed.append(path)
    return removed


def _restore_old(path: Path) -> bool:
    """Put back a folder parked by :func:`publish_dir` whose replacement never arrived."""
    match = _PARKED.match(path.name)
    if match is None or not path.is_dir():
        return False
    original = path.with_name(match["name"])
    if original.exists():
        return False
    path.rename(original)
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
