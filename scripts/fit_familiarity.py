"""Fit a checkpoint's familiarity statistics (captioner/familiarity.py) and report how often the
page's "unlike the training data" warning fires.

    python scripts/fit_familiarity.py --checkpoint assets/model --train DIR --heldout DIR \
        [--photos DIR ...] [--directions 128] [--quantile 0.99]

--train: images like the training images (ideally some of them); --heldout: other images of the
same world, never trained on, which set the threshold (the quantile stays under it); --photos:
folders of other images, to report the warning's rate on them. Writes CHECKPOINT/familiarity.npz.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pooled_features(model, folder: Path, limit: int, batch: int = 32):
    import numpy as np
    from captioner.assets import PICTURES
    from captioner.images import load_image
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in PICTURES)
    if limit and len(files) > limit:   # spread over the folder: a merged set lists one world, then the other
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).astype(int)]
    rows = []
    for start in range(0, len(files), batch):
        pictures = [load_image(p) for p in files[start:start + batch]]
        rows.append(model.features(pictures).numpy().mean(axis=1))
    return np.concatenate(rows), files


def fit_and_report(model, train: Path, heldout, photos=(), limit: int = 3000, directions: int = 128,
                   quantile: float = 0.99) -> dict:
    """Fit, save CHECKPOINT/familiarity.npz, and say how often the warning fires on each set.
    `heldout`: one folder or several (one per world)."""
    import numpy as np
    from captioner.familiarity import FILE, Familiarity
    train_features, _ = pooled_features(model, Path(train), limit)
    folders = [heldout] if isinstance(heldout, (str, Path)) else list(heldout)
    heldout_features = np.concatenate([pooled_features(model, Path(f), limit)[0] for f in folders])
    stats = Familiarity.fit(train_features, heldout_features, directions, quantile)
    report = {"train_images": len(train_features), "heldout_images": len(heldout_features),
              "directions": directions, "threshold": round(stats.threshold, 4),
              "heldout_warned": round(stats.heldout_rate, 4),
              "train_warned": round(float((stats.distances(train_features) > stats.threshold).mean()), 4)}
    for folder in photos:
        features, files = pooled_features(model, Path(folder), limit)
        flagged = stats.distances(features) > stats.threshold
        report[f"warned:{Path(folder).name}"] = f"{int(flagged.sum())}/{len(files)}"
        report[f"not_warned:{Path(folder).name}"] = [f.name for f, flag in zip(files, flagged) if not flag]
    stats.save(model.checkpoint.path / FILE)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--train", required=True)
    parser.add_argument("--heldout", required=True, nargs="+", help="one folder per world")
    parser.add_argument("--photos", nargs="*", default=[])
    parser.add_argument("--limit", type=int, default=3000, help="images per folder at most (0: all)")
    parser.add_argument("--directions", type=int, default=128)
    parser.add_argument("--quantile", type=float, default=0.99)
    args = parser.parse_args()
    import captioner
    captioner.import_tensorflow_quietly()
    from captioner import Captioner
    report = fit_and_report(Captioner.load(args.checkpoint), args.train, args.heldout, args.photos, args.limit,
                            args.directions, args.quantile)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
