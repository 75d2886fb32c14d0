"""Run ``aloe ARGS`` and SIGKILL this process at one exact instant of its writes (a test helper).

    python tests/data/kill_at.py POINT NAME N -- data run CONFIG --out OUT

POINT is where: ``replace`` (inside an atomic file write: the temp file is complete, ``os.replace``
has not run), ``replaced`` (just after that ``os.replace``: the write is complete), ``rename`` (a
finished temporary folder is about to be renamed into place) or ``put`` (an object-store write by
this process is about to be sent: on ``manifest.json``, the stage's shards are written, not committed).
NAME is the file or folder name the write targets (``manifest.json``, ``03-exact-dedup``); the kill
happens at its N-th such write (1-based). Patching the calls lands the kill exactly there, with no
timing luck.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sys


def main() -> None:
    point, name, nth, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: kill_at.py POINT NAME N -- ARGS"
    seen = 0

    def hit() -> bool:
        nonlocal seen
        seen += 1
        return seen == int(nth)

    if point in ("replace", "replaced"):
        original_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            target = pathlib.Path(dst).name == name and hit()
            if target and point == "replace":
                os.kill(os.getpid(), signal.SIGKILL)
            original_replace(src, dst, *args, **kwargs)
            if target:
                os.kill(os.getpid(), signal.SIGKILL)

        os.replace = replace
    elif point == "rename":
        original_rename = pathlib.Path.rename

        def rename(self, target):
            if pathlib.Path(target).name == name and hit():
                os.kill(os.getpid(), signal.SIGKILL)
            return original_rename(self, target)

        pathlib.Path.rename = rename
    elif point == "put":
        from aloe_core import storage

        original_put = storage.put_object

        def put_object(path, data):
            if storage.name_of(path) == name and hit():
                os.kill(os.getpid(), signal.SIGKILL)
            return original_put(path, data)

        storage.put_object = put_object
    else:
        raise SystemExit(f"unknown kill point {point!r}")

    from aloe_core.cli import main as aloe_main

    aloe_main(argv)


if __name__ == "__main__":
    main()
