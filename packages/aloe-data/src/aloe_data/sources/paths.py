"""Turn a source's ``path`` entries into the ordered list of files to read, on the driver, before any work.

Paths go through ``pyarrow.fs``, so local paths and URIs (``s3://``, ``gs://``, ``hdfs://``) behave the
same. Each entry is a file, a folder, or a glob; each file found becomes a :class:`FileUnit` with its
container and its path relative to the entry's root (the folder, the glob's fixed prefix, or a single
file's parent), which is what rows record as ``meta.file``.

Folders are walked recursively in sorted order, skipping names that start with ``.`` or ``_`` (caches,
``_SUCCESS`` markers); globs follow Python's ``glob`` (only ``.`` names are hidden; ``**`` spans any
number of folders) and a folder a glob matches is walked like a folder. A Hugging Face ``save_to_disk``
folder (``state.json``/``dataset_info.json`` next to ``*.arrow`` shards, or a ``dataset_dict.json``
with one such folder per split) is read as its shards.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
from dataclasses import dataclass

import pyarrow.fs as pafs

from aloe_core import storage
from aloe_core.errors import InputError
from aloe_data.sources.config import SourceConfig

logger = logging.getLogger(__name__)

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst")
EXTENSIONS = {
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "parquet": (".parquet", ".pq"),
    "arrow": (".arrow",),
}
HF_MARKERS = ("state.json", "dataset_info.json")
_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class FileUnit:
    """One file to read: ``path`` on the run's filesystem, ``rel`` (the row's ``meta.file``), container."""

    source_index: int
    path: str
    rel: str
    container: str


def filesystem_for(entry: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a path entry and the path on it (local paths made absolute; URIs through
    :func:`aloe_core.storage.resolve`, so sources honour ``AWS_ENDPOINT_URL`` like outputs do)."""
    return storage.resolve(entry)


def _strip_compression(name: str) -> str:
    lower = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            return lower[: -len(suffix)]
    return lower


def container_of(name: str, container: str) -> str | None:
    """The reader container of a file name under the configured ``container`` (None: not readable)."""
    if container == "hf_disk":
        return "arrow" if name.lower().endswith(".arrow") else None
    base = _strip_compression(name)
    wanted = EXTENSIONS if container == "auto" else {container: EXTENSIONS[container]}
    for kind, suffixes in wanted.items():
        if base.endswith(suffixes) and (kind in ("json", "jsonl") or base == name.lower()):
            return kind
    return None


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


class _Resolver:
    """Path resolution for one source; every error names the source and the path entry."""

    def __init__(self, source: SourceConfig, index: int, fs: pafs.FileSystem, entry: str) -> None:
        self.source, self.index, self.fs, self.entry = source, index, fs, entry

    def fail(self, what: str) -> InputError:
        return InputError(f"source {self.source.name!r}: path {self.entry!r}: {what}")

    def info(self, path: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(path)
        except OSError as exc:
            raise self.fail(f"cannot read {path} ({exc})") from None

    def listing(self, folder: str) -> list[pafs.FileInfo]:
        if isinstance(self.fs, pafs.LocalFileSystem) and not os.access(folder, os.R_OK | os.X_OK):
            raise self.fail(f"folder {folder} is not readable (check its permissions)")
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(folder, recursive=False))
        except OSError as exc:
            raise self.fail(f"cannot list folder {folder} ({exc})") from None
        return sorted(infos, key=lambda i: i.base_name)

    def unit(self, path: str, root: str, container: str) -> FileUnit:
        if isinstance(self.fs, pafs.LocalFileSystem) and not os.access(path, os.R_OK):
            raise self.fail(f"file {path} is not readable (check its permissions)")
        rel = (
            path[len(root) :].lstrip("/")
            if path.startswith(root.rstrip("/") + "/")
            else path.rsplit("/", 1)[-1]
        )
        return FileUnit(self.index, path, rel, container)

    def file(self, path: str, root: str, *, explicit: bool) -> list[FileUnit]:
        container = container_of(path.rsplit("/", 1)[-1], self.source.container)
        if container is None and explicit and self.source.container in ("jsonl", "json", "parquet"):
            container = self.source.container  # the user said what this file is; trust it over its name
        if container is None:
            if explicit:
                raise self.fail(
                    f"cannot tell how {path} is stored from its name; set `container:` "
                    "(jsonl, json, parquet, hf_disk) on the source"
                )
            return []
        return [self.unit(path, root, container)]

    def hf_folder(self, folder: str, names: set[str], root: str) -> list[FileUnit]:
        """The shards of a ``save_to_disk`` folder, as listed by its ``state.json`` when it has one."""
        if "state.json" in names:
            try:
                with self.fs.open_input_stream(f"{folder}/state.json") as f:
                    state = json.loads(f.read().decode("utf-8"))
                shards = [item["filename"] for item in state["_data_files"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise self.fail(
                    f"{folder}/state.json is unreadable or not a datasets state file ({exc})"
                ) from None
            missing = [s for s in shards if s not in names]
            if missing:
                raise self.fail(f"{folder}/state.json lists shards that do not exist: {missing}")
        else:
            shards = [n for n in names if n.endswith(".arrow") and not n.startswith("cache-")]
        if not shards:
            raise self.fail(f"save_to_disk folder {folder} has no *.arrow shards")
        return [self.unit(f"{folder}/{name}", root, "arrow") for name in sorted(shards)]

    def folder(self, folder: str, root: str) -> list[FileUnit]:
        infos = self.listing(folder)
        names = {i.base_name for i in infos if i.type == pafs.FileType.File}
        container = self.source.container
        if container in ("auto", "hf_disk") and "dataset_dict.json" in names:
            return self.dataset_dict(folder, root)
        if (
            container in ("auto", "hf_disk")
            and names & set(HF_MARKERS)
            and any(n.endswith(".arrow") for n in names)
        ):
            return self.hf_folder(folder, names, root)
        units: list[FileUnit] = []
        for info in infos:
            if _hidden(info.base_name):
                continue
            if info.type == pafs.FileType.Directory:
                units += self.folder(info.path, root)
            elif info.type == pafs.FileType.File:
                units += self.file(info.path, root, explicit=False)
        return units

    def dataset_dict(self, folder: str, root: str) -> list[FileUnit]:
        try:
            with self.fs.open_input_stream(f"{folder}/dataset_dict.json") as f:
                splits = json.loads(f.read().decode("utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise self.fail(f"{folder}/dataset_dict.json is unreadable ({exc})") from None
        units: list[FileUnit] = []
        for split in sorted(splits):
            split_dir = f"{folder}/{split}"
            if self.info(split_dir).type != pafs.FileType.Directory:
                raise self.fail(f"split folder {split_dir} named in dataset_dict.json does not exist")
            names = {i.base_name for i in self.listing(split_dir) if i.type == pafs.FileType.File}
            units += self.hf_folder(split_dir, names, root)
        return units

    def glob(self, pattern: str) -> tuple[str, list[pafs.FileInfo]]:
        """The glob's root (its fixed leading folders) and every file or folder it matches, sorted."""
        parts = pattern.split("/")
        first = next(i for i, part in enumerate(parts) if _MAGIC.search(part))
        root = "/".join(parts[:first]) or "/"
        candidates = [root]
        for depth, part in enumerate(parts[first:], start=first):
            last = depth == len(parts) - 1
            candidates = [m for c in candidates for m in self._match_segment(c, part, last)]
        infos = [self.info(c) for c in sorted(set(candidates))]
        return root, [i for i in infos if i.type in (pafs.FileType.File, pafs.FileType.Directory)]

    def _match_segment(self, folder: str, part: str, last: bool) -> list[str]:
        if not _MAGIC.search(part):
            return [f"{folder.rstrip('/')}/{part}"]
        if self.info(folder).type != pafs.FileType.Directory:
            return []
        if part == "**":
            found = [] if last else [folder]
            for info in self.listing(folder):
                if info.base_name.startswith("."):  # glob semantics: only dot names are hidden
                    continue
                if info.type == pafs.FileType.Directory:
                    found += [info.path] if last else []
                    found += self._match_segment(info.path, part, last)
                elif last:
                    found.append(info.path)
            return found
        return [
            i.path
            for i in self.listing(folder)
            if fnmatch.fnmatchcase(i.base_name, part)
            and (part.startswith(".") or not i.base_name.startswith("."))
        ]


def resolve_entry(source: SourceConfig, index: int, entry: str) -> tuple[pafs.FileSystem, list[FileUnit]]:
    """Files of one path entry of ``source``, sorted by their path relative to the entry's root.

    Raises:
        InputError: the entry matches no readable file, or a folder/file cannot be read.
    """
    fs, path = filesystem_for(entry)
    resolver = _Resolver(source, index, fs, entry)
    if _MAGIC.search(path):
        root, matches = resolver.glob(path)
        if not matches:
            raise resolver.fail("matches no file")
        units = []
        for info in matches:
            if info.type == pafs.FileType.Directory:
                units += resolver.folder(info.path, root)
            else:
                units += resolver.file(info.path, root, explicit=False)
    else:
        info = resolver.info(path)
        if info.type == pafs.FileType.NotFound:
            raise resolver.fail("does not exist")
        if info.type == pafs.FileType.Directory:
            units = resolver.folder(path, path)
        else:
            units = resolver.file(path, path.rsplit("/", 1)[0] or "/", explicit=True)
    if not units:
        wanted = "readable" if source.container == "auto" else source.container
        raise resolver.fail(
            f"matches no {wanted} data file (.jsonl, .json, .parquet or a save_to_disk folder)"
        )
    # A glob like `data/**` matches both a folder and the files inside it: read each file once.
    unique = {unit.path: unit for unit in reversed(units)}
    return fs, sorted(unique.values(), key=lambda u: u.rel)
