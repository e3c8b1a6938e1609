"""`hf://` checkpoints from a local Hub cache laid out as snapshot_download leaves it, offline."""
import shutil

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
