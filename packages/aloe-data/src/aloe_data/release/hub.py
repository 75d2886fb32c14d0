"""Upload a finished release to the Hugging Face Hub (``hub_repo``), only when ``HF_TOKEN`` is set.

The token is read from the environment by ``huggingface_hub`` itself and never logged or echoed. The
release folder is uploaded as it is (one commit), and the commit is tagged ``v<version>`` so the
version stays addressable after later releases (``load_dataset(repo, revision="v1.0.0")``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aloe_core.errors import InputError

logger = logging.getLogger("aloe.data.release")


def upload_release(folder: Path, repo_id: str, version: str, *, private: bool) -> str:
    """Create the dataset repo if needed, upload ``folder``, tag the commit; return the repo URL.

    Raises:
        InputError: ``HF_TOKEN`` is not set, or the tag ``v<version>`` exists already on the Hub.
    """
    if not os.environ.get("HF_TOKEN"):
        raise InputError(f"hub_repo {repo_id}: set HF_TOKEN to upload")
    from huggingface_hub import HfApi

    api = HfApi()
    tag = f"v{version}"
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if any(t.name == tag for t in api.list_repo_refs(repo_id, repo_type="dataset").tags):
        raise InputError(f"{repo_id}: tag {tag} exists on the Hub; a released version is never overwritten")
    logger.info("uploading %s to %s", folder, repo_id)
    commit = api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type="dataset", commit_message=f"Release {version}"
    )
    api.create_tag(repo_id, tag=tag, repo_type="dataset", revision=commit.oid)
    return str(url)
