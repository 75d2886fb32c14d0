"""Dataset releases: a pipeline run's final shards as a versioned folder people can load and trust.

``aloe data release RUN --out DIR --name NAME --version X.Y.Z`` writes (see :func:`write_release`)::

    DIR/
      README.md                 dataset card: Hugging Face front matter + sections
      data/train-00000-of-00001.parquet, data/validation-00000-of-00001.parquet
      stats/stats.json, funnel.png, lengths.png, scores.png
      provenance/run_manifest.json, pipeline_config.yaml, release_config.yaml
      croissant.json            Croissant 1.1 metadata (validated with mlcroissant)
      release.json              name, version, splits, licenses, code version, sha256 of every file

``aloe data verify-release DIR`` (:func:`verify_release`) checks all of it.
"""

from aloe_data.release.config import ReleaseConfig
from aloe_data.release.verify import verify_release
from aloe_data.release.write import write_release

__all__ = ["ReleaseConfig", "verify_release", "write_release"]
