"""Reading and writing safetensors one tensor at a time, so a merge holds a few tensors, not models.

Why not ``safe_open``: it memory-maps each file, and every page a merge touches stays mapped (and counts
in the process's resident memory) until the handle closes, i.e. up to the size of all inputs. Here a
tensor is read with plain ``readinto`` at the offsets the file's header gives, into a fresh buffer that
is freed when the tensor is. Writing is streamed the same way: a shard's header (names, dtypes, shapes,
offsets) is known before any data is computed, so it is written first and each tensor's bytes are
appended as soon as the tensor is merged. The files are ordinary safetensors (the tests read them back
with the ``safetensors`` library).

Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length, a JSON header
``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`` padded with spaces to a
multiple of 8 bytes, then the tensors' bytes back to back in ``data_offsets`` order.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from aloe_core.errors import ConfigError, InputError

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
_READ_CHUNK = 1 << 30  # one read() call moves at most ~2 GiB on Linux; stay well below


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: file, dtype, shape and the absolute byte range of its data."""

    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def read_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse one safetensors file's header: ``({name: TensorInfo}, metadata)``.

    Raises:
        InputError: the file is not a readable safetensors file (naming it and what is wrong).
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size - 8:
                raise ValueError(f"header length {length} exceeds the file size {size}")
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error) as exc:
        raise InputError(f"{path}: not a readable safetensors file ({exc})") from None
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + length
    infos = {}
    for name, entry in header.items():
        dtype = DTYPES.get(entry.get("dtype"))
        if dtype is None:
            raise InputError(f"{path}: tensor {name} has unsupported dtype {entry.get('dtype')!r}")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end - begin != math.prod(shape) * dtype.itemsize or data_start + end > size:
            raise InputError(f"{path}: tensor {name} has inconsistent data_offsets {begin, end}")
        infos[name] = TensorInfo(path, dtype, shape, data_start + begin, data_start + end)
    return infos, metadata


def read_tensor(info: TensorInfo, handle: BinaryIO | None = None) -> torch.Tensor:
    """Read one tensor into its own (writable) memory; pass an open ``handle`` to ``info.file`` to
    avoid reopening the file."""
    buffer = torch.empty(info.nbytes, dtype=torch.uint8)
    view = memoryview(buffer.numpy())
    own = handle is None
    f = open(info.file, "rb") if own else handle  # noqa: SIM115 - closed below when opened here
    try:
        f.seek(info.start)
        done = 0
        while done < info.nbytes:
            got = f.readinto(view[done : done + _READ_CHUNK])
            if not got:
                raise InputError(f"{info.file}: file ends inside a tensor (truncated download?)")
            done += got
    finally:
        if own:
            f.close()
    return (
        buffer.view(info.dtype).reshape(info.shape)
        if info.nbytes
        else torch.empty(info.shape, dtype=info.dtype)
    )


def encode_header(entries: list[tuple[str, torch.dtype, tuple[int, ...]]], metadata: dict[str, str]) -> bytes:
    """The header bytes (length prefix included) for tensors stored in ``entries`` order."""
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name, dtype, shape in entries:
        nbytes = math.prod(shape) * dtype.itemsize
        header[name] = {
            "dtype": DTYPE_CODES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    return struct.pack("<Q", len(blob)) + blob


class ShardWriter:
    """Writes one safetensors file whose tensors (names, dtypes, shapes, order) are fixed up front.

    ``write`` must be called once per planned tensor, in the planned order; ``close`` checks that all were
    written. ``sha256`` is the digest of the bytes written (valid after ``close``).
    """

    def __init__(self, path: Path, entries: list[tuple[str, torch.dtype, tuple[int, ...]]]) -> None:
        self.path = path
        self._entries = entries
        self._next = 0
        self._hash = hashlib.sha256()
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._put(encode_header(entries, {"format": "pt"}))

    def _put(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._hash.update(data)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        expected, dtype, shape = self._entries[self._next]
        if name != expected or tensor.dtype != dtype or tuple(tensor.shape) != shape:
            raise RuntimeError(
                f"{self.path}: expected {expected} {dtype} {shape}, "
                f"got {name} {tensor.dtype} {tuple(tensor.shape)}"
            )
        if tensor.numel():
            self._put(memoryview(tensor.contiguous().reshape(-1).view(torch.uint8).numpy()))
        self._next += 1

    def close(self) -> str:
        self._file.close()
        if self._next != len(self._entries):
            raise RuntimeError(
                f"{self.path}: {len(self._entries) - self._next} planned tensors were not written"
            )
        return self._hash.hexdigest()

    def abort(self) -> None:
        self._file.close()


def plan_shards(
    entries: list[tuple[str, torch.dtype, tuple[int, ...]]], max_bytes: int
) -> list[list[tuple[str, torch.dtype, tuple[int, ...]]]]:
    """Split tensors, in order, into shards of at most ``max_bytes`` (a larger tensor gets its own)."""
    shards: list[list[tuple[str, torch.dtype, tuple[int, ...]]]] = [[]]
    size = 0
    for entry in entries:
        nbytes = math.prod(entry[2]) * entry[1].itemsize
        if shards[-1] and size + nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += nbytes
    return shards


def shard_names(count: int) -> list[str]:
    """Hugging Face's file names: ``model.safetensors`` alone, else ``model-0000i-of-0000n.safetensors``."""
    if count == 1:
        return [SINGLE_FILE]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def write_index(folder: Path, weight_map: dict[str, str], total_size: int) -> None:
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def sha256_file(path: Path, chunk: int = 16 << 20) -> str:
    """Hex sha256 of a file, read in chunks (hashlib releases the GIL, so threads hash in parallel)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_size(size: str) -> int:
    """Bytes in a size such as ``5GB`` (10**9) or ``500MiB`` (2**20), Hugging Face's convention for
    ``max_shard_size``; plain digits are bytes.

    Raises:
        ConfigError: not a positive size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", str(size), flags=re.IGNORECASE)
    value = 0
    if match:
        unit = (match.group(2) or "b").lower()
        scale = 1 if unit == "b" else (1024 if "i" in unit else 1000) ** ("kmgt".index(unit[0]) + 1)
        value = int(float(match.group(1)) * scale)
    if value <= 0:
        raise ConfigError(f"max_shard_size: {size!r} is not a size; write e.g. 5GB or 500MB")
    return value
