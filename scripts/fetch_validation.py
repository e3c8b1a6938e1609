"""Fetch the hand-labelled validation photos (assets/validation/labels.json) into data/validation/.

The photos come from Debian `opencv-doc`, PyPI `foolbox` 3.3.4 and PyPI `scikit-image` 0.26.0,
downloaded once into data/sources/ (captioner/worlds/photos/sources.py); only the labels are committed.
Then: python -m captioner evaluate --labels assets/validation/labels.json --photos data/validation
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labels", default=str(ROOT / "assets" / "validation" / "labels.json"))
    parser.add_argument("--out", default=str(ROOT / "data" / "validation"))
    args = parser.parse_args()
    from captioner.worlds.photos import sources
    from captioner.subjects import load_labels
    labels = load_labels(args.labels)
    folders = {}
    for photo in labels:
        source, _, name = photo["file"].partition("/")
        if source not in folders:
            folders[source] = sources.fetch(source)
        target = Path(args.out) / photo["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folders[source] / name, target)
    print(f"{len(labels)} photos in {args.out}")


if __name__ == "__main__":
    main()
