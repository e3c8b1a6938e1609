"""Checkpoints on the Hugging Face Hub: `hf://owner/repo[@revision]` to load, `push` to share."""
from __future__ import annotations

from pathlib import Path

from .checkpoint import FILES, CheckpointError

SHARED = list(FILES)


def download(spec: str, cache_dir=None) -> Path:
    """`owner/repo[@revision]` -> local snapshot folder (offline with HF_HUB_OFFLINE=1 from the cache)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    repo_id, _, revision = spec.partition("@")
    try:
        return Path(snapshot_download(repo_id, revision=revision or None, cache_dir=cache_dir,
                                      allow_patterns=SHARED))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, ValueError, OSError) as error:
        raise CheckpointError(f"hf://{spec}: cannot be fetched from the Hugging Face Hub "
                              f"({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None


def push(checkpoint, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a checkpoint folder (without optimizer state) to a model repo; -> the repo URL."""
    from huggingface_hub import HfApi
    from .checkpoint import load_checkpoint
    load_checkpoint(checkpoint)   # never share a checkpoint that does not load
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(checkpoint), repo_id=repo_id, allow_patterns=SHARED,
                      commit_message="Upload captioner checkpoint")
    return str(url)
