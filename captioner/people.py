"""Whether a photograph shows a person: the one thing the encoder's ImageNet head has no class for.

ImageNet's 1000 classes name no person (a few name what people wear or do: "groom", "scuba diver"),
so the head read a woman on a beach as "a dog" and an astronaut as "a sled", and the evidence gate
(model.CopyPath.seen) could not tell a person was there. Two small detectors from MediaPipe (PyPI
`mediapipe` 0.10.14, Apache-2.0; assets/encoders/people/README.md) can: BlazeFace full range (faces
up to about 5 m, 192 px) and BlazePose's person detector (whole bodies, 224 px). Each image gives
their best detection scores; `PersonProbe` turns the two into one probability, a logistic regression
on their logits fitted after training on the calibration photos (calibrate.fit_person_probe), saved
in the config (person_face, person_body, person_bias). The model then treats that probability as one
class more beside the head's 1000 (model.CopyPath): "person" and "people" are said where it is high,
and other nouns need the head's evidence for what is not a person.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from .assets import ASSETS

DETECTORS = {"face": ASSETS / "encoders" / "people" / "face_detection_full_range_sparse.tflite",
             "body": ASSETS / "encoders" / "people" / "pose_detection.tflite"}
# The probe's probability is a yes or no, unlike the head's spread over 1000 classes, where 0.05 is
# a lot: below even odds the gate sees no person (a plant at 0.2 is not "a plant and a person").
PERSON_SEEN_AT = 0.5
# What a caption's word view names as the source of "person" (api.Caption.imagenet).
PERSON_SEEN = "the person detectors"
SMALL = 448   # px: twice the larger detector's input
# The labels' words for a person (assets/validation/labels.json): what the probe is fitted against.
PERSON_WORDS = frozenset({"person", "people", "man", "men", "woman", "women", "boy", "girl", "child",
                          "children", "soldier", "soldiers", "astronaut", "player", "players", "baby"})


class PersonDetectors:
    """RGB pictures -> (B, 2) the face and body detectors' best scores, in [0, 1]. Not thread-safe
    (LiteRT interpreters): the Captioner calls it inside its model calls."""

    def __init__(self, threads: int = 1):
        from .litert import interpreter
        self._interpreters = {name: interpreter(path, threads) for name, path in DETECTORS.items()}

    def __call__(self, pictures) -> np.ndarray:
        return np.array([[self._best(interpreter, image) for interpreter in self._interpreters.values()]
                         for image in map(_small, pictures)], np.float32)

    @staticmethod
    def _best(interpreter, image) -> float:
        """The highest detection score: MediaPipe's letterbox (the whole picture, padded square) at
        the detector's size, pixels in [-1, 1]; its scores are logits, one per anchor."""
        from PIL import Image, ImageOps
        entry = interpreter.get_input_details()[0]
        size = int(entry["shape"][1])
        square = ImageOps.pad(image, (size, size), Image.BILINEAR, color=(0, 0, 0))
        interpreter.set_tensor(entry["index"], (np.asarray(square, np.float32) / 127.5 - 1.0)[None])
        interpreter.invoke()
        scores = next(interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
                      if d["shape"][-1] == 1)                                   # (1, anchors, 1)
        return float(1.0 / (1.0 + np.exp(-np.clip(scores.max(), -30.0, 30.0))))


def _small(picture):
    """An RGB PIL image at most about 2 x SMALL on its longer side: a whole-factor box reduction
    first (cheap), so neither detector resizes a camera's 12 megapixels."""
    from PIL import Image
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, np.uint8))
    factor = max(image.size) // SMALL
    return (image.reduce(factor) if factor > 1 else image).convert("RGB")


@dataclass(frozen=True)
class PersonProbe:
    face: float = 0.0
    body: float = 0.0
    bias: float = 0.0

    @property
    def fitted(self) -> bool:
        return (self.face, self.body) != (0.0, 0.0)

    def probability(self, scores) -> np.ndarray:
        """(B, 2) detector scores -> (B,) the probability that each picture shows a person."""
        z = _logit(scores) @ np.array([self.face, self.body]) + self.bias
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    @classmethod
    def fit(cls, scores, shows_person, l2: float = 1.0) -> "PersonProbe":
        """(N, 2) detector scores, (N,) whether a person is in each picture -> the probe
        (confidence.fit_logistic with an L2 penalty on the two weights: a few dozen pictures)."""
        from .confidence import fit_logistic
        (face, body), bias = fit_logistic(_logit(scores), list(shows_person), ridge=l2)
        return cls(face, body, bias)


def _logit(scores) -> np.ndarray:
    from .confidence import logit
    return logit(np.asarray(scores, np.float64), eps=1e-4)   # detector scores down to 1e-13: a bounded logit


def shows_person(photo: dict) -> bool:
    """Whether a labelled photo (assets/validation/labels.json) has a person in it."""
    return bool(PERSON_WORDS & {*photo["nouns"], *photo.get("objects", [])})
