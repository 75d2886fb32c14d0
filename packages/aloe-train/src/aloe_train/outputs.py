"""Where a training run's files are written: ``output_dir`` itself, or a local scratch folder whose
finished files are uploaded to ``output_dir`` when it is a URI (``s3://bucket/run``).

Local (and NFS) output folders are written in place, exactly as before. An object store has no append
and no rename, and the libraries that write a run's files (``save_pretrained``, matplotlib, an appended
``metrics.jsonl``) write local files; so on a URI each such file is made in a local scratch folder of the
process that writes it (rank 0 for the metrics, the loss curve and the export) and uploaded once it is
finished, each file as one PUT (the rule of :mod:`aloe_core.atomic`): ``metrics.jsonl`` after every
checkpoint and at the end, the export folder with ``config.json`` last (:func:`aloe_core.atomic.upload_dir`),
``summary.json`` after everything else. Small files written whole (``config.yaml``, ``data_stats.json``,
``summary.json``) go straight to their place through :mod:`aloe_core.atomic`. Checkpoints do not pass
through here: Ray Train writes them to the URI itself (``RunConfig(storage_filesystem=...)``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from aloe_core import storage
from aloe_core.atomic import upload_dir

METRICS = "metrics.jsonl"
MODEL = "model"


class RunFiles:
    """The output folder of one training process: :meth:`local` paths to write, :meth:`publish` to make
    a finished file appear at :meth:`target`. Locally both are the same path and publishing does nothing.
    """

    def __init__(self, output_dir: str) -> None:
        self.root = output_dir
        self.remote = storage.is_uri(output_dir)
        self._scratch = Path(tempfile.mkdtemp(prefix="aloe-train-out-")) if self.remote else None

    def target(self, name: str) -> str:
        """Where ``name`` ends up (a path in the output folder, or its URI)."""
        return storage.join(self.root, name)

    def local(self, name: str) -> Path:
        """The local file (or folder) to write ``name`` into."""
        return (self._scratch or Path(self.root)) / name

    def fetch(self, name: str) -> Path:
        """The local file of ``name``, first downloaded from the URI when an earlier attempt left one
        there (a resumed run continues the metrics log it wrote)."""
        if self.remote and storage.is_file(self.target(name)):
            storage.download_file(self.target(name), self.local(name))
        return self.local(name)

    def publish(self, name: str) -> str:
        """Upload the finished local file ``name`` as one object (nothing locally); returns its target."""
        if self.remote:
            storage.upload_file(self.local(name), self.target(name))
        return self.target(name)

    def publish_model(self, name: str = MODEL) -> str:
        """Upload the finished local Hugging Face folder ``name`` (``config.json`` last); returns where."""
        if self.remote:
            upload_dir(self.local(name), self.target(name), last="config.json")
        return self.target(name)

    def close(self) -> None:
        """Remove the scratch folder (what it held has been uploaded, or the run failed)."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
