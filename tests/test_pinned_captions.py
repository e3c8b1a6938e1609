"""The shipped model's captions of the examples, pinned: a refactor of the inference path must not
change a word. Pinned from the code before the inference path was reshaped (issue 15); a new
default model re-pins them (PYTHONPATH=. python tests/test_pinned_captions.py > tests/data/pinned_captions.json)."""
import json
import sys
from pathlib import Path

import pytest

from captioner import Captioner
from captioner.assets import EXAMPLES

PINS = Path(__file__).parent / "data" / "pinned_captions.json"


def current(model) -> dict:
    examples = sorted(EXAMPLES.glob("*.jpg"))
    out = {p.name: {"greedy": model.caption(p).text,
                    "beam3": model.caption(p, strategy="beam", beam_size=3).text,
                    "sample7": model.caption(p, strategy="sample", temperature=1.0, seed=7).text}
           for p in examples}
    out["__samples__"] = [c.text for c in model.captions(examples[0], strategy="sample", num_samples=3,
                                                         seed=11, temperature=1.5)]
    return out


@pytest.fixture(scope="module")
def model():
    return Captioner.load()


def test_the_shipped_model_captions_the_examples_as_pinned(model):
    assert current(model) == json.loads(PINS.read_text())


if __name__ == "__main__":
    json.dump(current(Captioner.load()), sys.stdout, indent=1)
