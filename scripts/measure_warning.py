"""Measure the page's warning ("nothing to caption" / "unlike the training data") as a detector,
and choose the familiarity threshold on it.

    python scripts/measure_warning.py [--checkpoint DIR] [--photos data/validation] [--choose]

Images it should flag: blank and flat colours, pixel noise, text, screenshots of this page, and the
validation photos whose subject the vocabulary cannot name. Images it should not: the validation
photos it can name. With --choose, the threshold on the feature distance becomes the one that best
separates those two groups (largest flagged-minus-false rate) while no example photo whose subject
it can name is flagged; it is written into CHECKPOINT/familiarity.npz and the rates into
CHECKPOINT/heldout_figures.json ("warning"), which the model card reads.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHOULD_WARN = ("blank", "flat colour", "noise", "text", "screenshot", "photo it has no word for")


def made_images(seed: int = 0) -> dict[str, list]:
    """The images no caption should be trusted on, made here: blank, flat, noise, text."""
    rng = np.random.default_rng(seed)
    flat = [Image.new("RGB", (256, 256), tuple(int(v) for v in rng.integers(0, 256, 3))) for _ in range(12)]
    noise = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(6)]
    noise += [Image.fromarray(rng.integers(0, 256, (256, 256), dtype=np.uint8)).convert("RGB") for _ in range(3)]
    return {"blank": [Image.new("RGB", (256, 256), c) for c in ((0, 0, 0), (255, 255, 255), (128, 128, 128))],
            "flat colour": flat + [Image.new("RGB", (8, 8), (255, 0, 0))], "noise": noise,
            "text": [text_image(size) for size in range(14, 46, 4)]}


def text_image(size: int) -> Image.Image:
    image = Image.new("RGB", (400, 300), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=size)
    for y in range(0, 300, size + 8):
        draw.text((10, y), "The quick brown fox jumps over the lazy dog", fill="black", font=font)
    return image


def labelled_sets(captioner, labels_file, photos: Path) -> dict[str, list]:
    from captioner.assets import EXAMPLES
    from captioner.subjects import in_vocabulary, load_labels
    labels = [p for p in load_labels(labels_file) if (photos / p["file"]).is_file()]
    names = {p["file"]: in_vocabulary(p["nouns"], captioner.vocab.words) for p in labels}
    by_stem = {Path(file).stem: named for file, named in names.items()}   # the examples are named by stem
    open_rgb = lambda path: Image.open(path).convert("RGB")
    examples = [p for p in sorted(EXAMPLES.glob("*.jpg")) if by_stem.get(p.stem.split("_", 2)[-1], True)]
    return {"screenshot": [open_rgb(p) for p in sorted((ROOT / "docs" / "screenshots").glob("*.png"))],
            "photo it has no word for": [open_rgb(photos / p["file"]) for p in labels if not names[p["file"]]],
            "photo it can name": [open_rgb(photos / p["file"]) for p in labels if names[p["file"]]],
            "example it can name": [open_rgb(p) for p in examples]}


def measure(captioner, labels_file, photos, choose: bool = False) -> dict:
    """-> {"threshold", "chosen": how, "rates": {set: {"warned", "images"}}}; with `choose`, the
    threshold is chosen first and saved with the checkpoint."""
    from captioner.familiarity import FILE, content_warning
    stats = captioner.checkpoint.familiarity
    sets = {**made_images(), **labelled_sets(captioner, labels_file, Path(photos))}
    pixels = {name: np.array([content_warning(p) is not None for p in images]) for name, images in sets.items()}
    distance = {name: stats.distances(captioner.features(images).numpy().mean(axis=1)) for name, images in sets.items()}
    if choose:
        stats.threshold = choose_threshold(distance)
        stats.save(captioner.checkpoint.path / FILE)
    rates = {name: {"warned": int((pixels[name] | (distance[name] > stats.threshold)).sum()), "images": len(images),
                    "should_warn": name in SHOULD_WARN} for name, images in sets.items()}
    return {"threshold": round(float(stats.threshold), 4), "rates": rates,
            "chosen": "on the validation photos and the examples" if choose else "when the statistics were fitted"}


def choose_threshold(distance: dict) -> float:
    """The feature-distance threshold that best tells the images it should flag that the pixels do
    not (text, screenshots, photos it has no word for) from the photos it can name, among those that
    flag no example it can name."""
    flag = np.concatenate([distance[n] for n in ("text", "screenshot", "photo it has no word for")])
    keep, examples = distance["photo it can name"], distance["example it can name"]
    candidates = np.unique(np.concatenate([flag, keep, examples]))
    allowed = candidates[candidates >= examples.max()] + 1e-4
    return float(max(allowed, key=lambda t: (np.mean(flag > t) - np.mean(keep > t), -t)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(ROOT / "assets" / "model"))
    parser.add_argument("--labels", default=str(ROOT / "assets" / "validation" / "labels.json"))
    parser.add_argument("--photos", default=str(ROOT / "data" / "validation"))
    parser.add_argument("--choose", action="store_true", help="choose the threshold and save it with the checkpoint")
    args = parser.parse_args()
    import captioner
    captioner.import_tensorflow_quietly()
    from captioner import Captioner
    report = measure(Captioner.load(args.checkpoint, use_litert=False), args.labels, args.photos, args.choose)
    if args.choose:
        figures = Path(args.checkpoint) / "heldout_figures.json"
        record = json.loads(figures.read_text()) if figures.is_file() else {}
        figures.write_text(json.dumps({**record, "warning": report}, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
