"""`hf://` checkpoints from a local Hub cache laid out as snapshot_download leaves it, offline."""
import fnmatch
import shutil
from pathlib import Path

import huggingface_hub.constants as hub_constants
import pytest

from captioner import Captioner
from captioner.checkpoint import CheckpointError
from captioner.hub import SHARED, download

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(root, repo_id, checkpoint):
    """models--owner--name/{refs/main, snapshots/<commit>/...}: the Hub cache's layout."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for name in SHARED:
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, snapshot / name)
    return root


@pytest.fixture
def offline_hub(monkeypatch, tmp_path, trained_checkpoint):
    cache = fake_hub_cache(tmp_path / "hub", "someone/tiny-captioner", trained_checkpoint[0])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_load_from_hub_cache_offline_gives_the_same_captions(offline_hub, trained_checkpoint, coco_fixture):
    assert download("someone/tiny-captioner").name == COMMIT
    image = sorted(coco_fixture[1].iterdir())[0]
    from_hub = Captioner.load("hf://someone/tiny-captioner")
    assert from_hub.caption(image).text == Captioner.load(trained_checkpoint[0]).caption(image).text
    assert Captioner.from_pretrained("someone/tiny-captioner").vocab.words == from_hub.vocab.words


def test_unknown_hub_repo_offline_is_a_clear_error(offline_hub):
    with pytest.raises(CheckpointError, match="hf://nobody/nothing"):
        Captioner.load("hf://nobody/nothing")


def test_a_push_and_download_round_trip_keeps_every_file(monkeypatch, tmp_path, trained_checkpoint):
    # Before: hub.SHARED left out familiarity.npz, so an hf:// model never warned on unfamiliar images.
    import numpy as np
    from captioner import hub
    from captioner.checkpoint import FILES, load_checkpoint
    from captioner.familiarity import Familiarity
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint[0], checkpoint)
    channels = load_checkpoint(checkpoint).config.model.feature_dim
    rng = np.random.default_rng(0)
    Familiarity.fit(rng.normal(size=(64, channels)), rng.normal(size=(16, channels)), directions=8).save(
        checkpoint / "familiarity.npz")
    (checkpoint / "validation_captions.jsonl").write_text("{}\n")
    uploaded = tmp_path / "uploaded"

    class FakeApi:                             # what upload_folder would send, by its own patterns
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=False, exist_ok=True):
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, folder_path, repo_id, allow_patterns, commit_message):
            uploaded.mkdir()
            for path in Path(folder_path).iterdir():
                if any(fnmatch.fnmatch(path.name, pattern) for pattern in allow_patterns):
                    shutil.copy2(path, uploaded / path.name)

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    hub.push(checkpoint, "someone/round-trip")
    kept = {path.name for path in checkpoint.iterdir()} & set(FILES)
    assert {path.name for path in uploaded.iterdir()} == kept and "familiarity.npz" in kept
    cache = fake_hub_cache(tmp_path / "hub", "someone/round-trip", uploaded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    assert {path.name for path in download("someone/round-trip").iterdir()} == kept
    assert Captioner.load("hf://someone/round-trip").checkpoint.familiarity is not None    # it warns
