"""What ships beside the code: the default model, the encoder weights and the example pictures."""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_CHECKPOINT = ASSETS / "model"
EXAMPLES = ASSETS / "examples"
LITE0_WEIGHTS = ASSETS / "encoders" / "efficientnet_lite0.npz"
PICTURES = (".jpg", ".jpeg", ".png", ".webp")
# What a visitor tries first: real photographs, then photo composites, then emoji scenes.
EXAMPLE_ORDER = ("photo_", "composite_")


def example_images(folder=EXAMPLES) -> list[Path]:
    """The example pictures in a folder (none if it is missing), in EXAMPLE_ORDER, then the rest."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pictures = [p for p in folder.iterdir() if p.suffix.lower() in PICTURES]
    rank = lambda p: next((n for n, prefix in enumerate(EXAMPLE_ORDER) if p.name.startswith(prefix)),
                          len(EXAMPLE_ORDER))
    return sorted(pictures, key=lambda p: (rank(p), p.name))
