"""The MS-COCO recipe (InceptionV3, as in the seed) end to end on a COCO-layout fixture, offline.

InceptionV3's ImageNet weights cannot be downloaded here, so the encoder gets random weights
(`--encoder-weights none`): this checks the file layout, shapes and the whole command line.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import make_coco_fixture

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, timeout=300):
    result = subprocess.run([sys.executable, "-m", "captioner", *args], capture_output=True, text=True,
                            cwd=ROOT, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_coco_layout_features_train_and_caption_with_inception(tmp_path):
    captions, images = make_coco_fixture(tmp_path / "coco", images=6, size=120)
    assert captions.name == "captions_train2014.json" and images.name == "train2014"
    common = ["--captions", str(captions), "--images", str(images), "--limit-captions", "15"]
    cli("features", *common, "--encoder", "inception_v3", "--encoder-weights", "none",
        "--cache", str(tmp_path / "features"))
    index = json.loads((tmp_path / "features" / "inception_v3" / "index.json").read_text())
    assert len(index) == 5 and all(name.startswith("COCO_train2014_") for name in index)   # 15 captions, 3 each
    out = tmp_path / "run"
    cli("train", *common, "--encoder", "inception_v3", "--encoder-weights", "none",
        "--cache", str(tmp_path / "features"), "--out", str(out), "--epochs", "1", "--batch-size", "4",
        "--units", "32", "--embedding-dim", "16")
    config = json.loads((out / "config.json").read_text())["model"]
    assert (config["encoder"], config["grid_size"], config["feature_dim"]) == ("inception_v3", 8, 2048)
    line = json.loads(cli("caption", str(sorted(images.iterdir())[0]), "--json", "--checkpoint", str(out),
                          "--encoder-weights", "none").splitlines()[0])
    assert len(line["words"]) == len(line["probs"]) <= 24
