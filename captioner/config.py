"""Configuration as plain dataclasses, saved as `config.json` inside every checkpoint.

The model is rebuilt from this file alone, so a checkpoint never depends on the code's defaults
of the day it is loaded.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

# 2: the retired experiments' keys are gone (RETIRED); a version 1 config without one meant its old default.
CONFIG_VERSION = 2
# What a checkpoint's config.json may hold: a model this far outside them is a corrupt or hostile
# file (units=2,000,000 would allocate for minutes before failing), not a model anyone trained.
LIMITS = {"image_size": (0, 1024), "grid_size": (1, 64), "feature_dim": (1, 8192), "vocab_size": (5, 1_000_000),
          "embedding_dim": (1, 4096), "units": (1, 4096), "dropout": (0.0, 0.99), "max_length": (1, 100),
          "word_prior_scale": (0.0, 100.0), "copy_weight": (0.0, 1.0), "noun_evidence": (0.0, 1.0),
          "setting_evidence": (0.0, 1.0),
          "noun_confidence_slope": (0.0, 10.0), "noun_confidence_bias": (-10.0, 10.0),
          "noun_confidence_evidence": (0.0, 10.0), "person_face": (-50.0, 50.0), "person_body": (-50.0, 50.0),
          "person_bias": (-50.0, 50.0),
          "epochs": (0, 100_000), "batch_size": (1, 65_536),
          "val_fraction": (0.0, 0.99), "limit_captions": (0, 10 ** 9), "captions_per_image": (0, 10 ** 6),
          "length_step": (0, 100)}
# Keys older checkpoints may hold that are now one knob with another: read and dropped.
MERGED = {"train": ("vocab_top_k", "max_caption_words")}   # -> model.vocab_size, model.max_length
# Experiments measured and not shipped (docs/measurements.md keeps their record). Per retired model
# key: the one value this code still builds, what a version 1 checkpoint saved before the key existed
# meant, and the flag without which the key meant nothing. A checkpoint meaning the value built loads (the
# key is dropped); one meaning anything else is refused with one line naming the field.
RETIRED = {"attention_gate": (True, True, None), "attention_count": (False, False, None),
           "initial_state": ("mean", "mean", None), "word_prior": ("attended", "image", "imagenet_words")}
RETIRED_CHOICES = {"imagenet_head": ("logits",)}
CHOICES = {"imagenet_head": ("none", "softmax"), "distribute": ("none", "", "mirrored", "multiworker")}


@dataclass
class ModelConfig:
    encoder: str = "efficientnet_lite0"
    image_size: int = 0           # encoder input side in pixels; 0 = its own (Lite0 224 -> 7x7 grid)
    grid_size: int = 7            # attention grid is grid_size x grid_size  } set from the encoder
    feature_dim: int = 1280       # channels of the encoder's feature map    } by training
    vocab_size: int = 5000        # most words kept by training (<pad>, <start>, <end>, <unk> included); then the actual size
    embedding_dim: int = 256      # also the width of the projected features
    units: int = 512              # GRU state and attention width
    dropout: float = 0.3
    max_length: int = 24          # longest caption, in words, <end> excluded: generated, and trained on (longer are cut)
    # The encoder's own ImageNet classifier (Lite0's head: mean-pooled features -> 1000 classes, frozen)
    # as extra evidence for the decoder: its class probabilities ("softmax"), embedded, start the GRU
    # state and go into every step (GRU input and deep output). "none": the plain Show, Attend and Tell.
    imagenet_head: str = "none"
    # With the head: a fixed (1000 x vocabulary) map from ImageNet classes to the caption nouns they
    # name (WordNet, captioner/word_map.py) gives each step a prior over words: the head on the
    # cells the step attends to, so each word's prior follows its heatmap. A learnt, per-step gate
    # adds it to the logits (model.WordPrior): the decoder still chooses every word.
    imagenet_words: bool = False
    # A gate of softplus(0) ~ 0.7 on a word holding all the class mass adds 0.7 x scale to its logit.
    # 8 is what checkpoints saved before this field existed used; `make model` trains at 16 and
    # calibrates the scale it decodes with.
    word_prior_scale: float = 8.0
    # Each ImageNet class speaks once per caption. A class that named a word
    # the caption has said ("cat") adds nothing more to any word ("cat", "cats"), so a loud prior
    # cannot make the decoder say the same thing again ("a cat in a cat a cat ..."); the captions of
    # both worlds never name one thing twice. Carried in the decoder state, (B, 1000) spent classes.
    # The map speaks to a noun's first word, so a word spends every class naming a noun it starts:
    # "hot" (air balloon) spends the hotdog class too. Rare, and only ever a quieter prior.
    word_prior_once: bool = False
    # Whether the prior speaks to a caption's first word (the step after <start>). No caption of
    # either world starts with a noun ("a", "two", "there", "a picture of"), and a loud prior there
    # writes "apple picture of a mango".
    word_prior_first_word: bool = True
    # The copy path (captioner/copy_path.py, model.CopyPath): this share of the decoder's noun mass
    # goes to the everyday names of the classes the step attends to, so it can name what no training
    # caption did. 0 = off (the decoder says only its vocabulary's words). Needs imagenet_words.
    copy_weight: float = 0.0
    # In a photograph (photo_probe.py), a noun is said only where the encoder's ImageNet head, over the
    # whole image, gives the classes naming it at least this probability (model.CopyPath.seen): what
    # the head does not see is not named. Chosen after training (calibrate.choose_noun_evidence).
    # 0 = off. Needs copy_weight.
    noun_evidence: float = 0.0
    # A photograph's caption keeps its setting only where the ImageNet head gives that setting's
    # classes (settings_seen.py, the checkpoint's setting_classes.json) at least this probability over
    # the whole image; otherwise it ends before the setting. Chosen after training. 0 = off.
    setting_evidence: float = 0.0
    # The confidence shown for a noun is sigmoid(slope x logit(p) + bias) of the probability p the
    # decoder gave it: Platt scaling fitted after training on real photos (calibrate.fit_noun_confidence)
    # so that "0.8" means the noun is in the photo about 8 times in 10. 1 and 0: p itself.
    noun_confidence_slope: float = 1.0
    noun_confidence_bias: float = 0.0
    # In a photograph (photo_probe.py), + this x logit(e) inside the sigmoid, e the head's probability
    # of the noun's classes over the whole image: what tells a noun in the photo from an invented one
    # (docs/measurements.md). Rendered scenes show the decoder's probability. 0: p alone.
    noun_confidence_evidence: float = 0.0
    # Whether a photograph shows a person, which no ImageNet class says: sigmoid(face x logit(f) +
    # body x logit(b) + bias) of the best scores of MediaPipe's face and body detectors (people.py),
    # one class more in the noun gate (model.CopyPath.seen). Fitted after training on the calibration
    # photos (calibrate.fit_person_probe). All 0 = off.
    person_face: float = 0.0
    person_body: float = 0.0
    person_bias: float = 0.0


@dataclass
class TrainConfig:
    captions: str = ""
    images: str = ""
    out: str = "runs/model"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    clip_norm: float = 5.0
    attention_lambda: float = 1.0  # doubly stochastic attention regularisation (Xu et al. eq. 14)
    attention_supervision: float = 0.0   # weight of the box loss on noun steps (grounding.py); 0 = off
    instances: str = ""            # COCO instances.json with boxes, for attention_supervision
    val_fraction: float = 0.05
    seed: int = 0
    limit_captions: int = 0        # 0 = all; e.g. 30000 for the seed tutorial's subset
    # 0 = all; k = k of each image's captions, drawn with `seed`. The scene worlds write five
    # phrasings of one content per image: two of them and twice the images teach more for the
    # same steps (docs/measurements.md).
    captions_per_image: int = 0
    distribute: str = "none"       # none | mirrored | multiworker
    jit_compile: bool = True       # XLA for the train step (single device only)
    # Batch captions of about one length and unroll the decoder only as far as each batch's
    # longest, rounded up to a multiple of this (data.caption_dataset); 0 = always max_length + 1.
    # Batches of one length weigh short captions' tokens a little more over an epoch than mixed
    # batches do. Distributed runs use 0.
    length_step: int = 4

    @property
    def distributed(self) -> bool:
        return self.distribute not in ("", "none")


@dataclass
class CheckpointConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    version: int = CONFIG_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "CheckpointConfig":
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        version = data.get("version", 1)
        if version > CONFIG_VERSION:
            raise ValueError(f"config version {version} is newer than this code ({CONFIG_VERSION})")
        train, model = data.get("train", {}), data.get("model", {})
        if isinstance(train, dict):
            train = {k: v for k, v in train.items() if k not in MERGED["train"]}
        if isinstance(model, dict):
            model = _without_retired(model, version)
        return cls(model=build_section(ModelConfig, model), train=build_section(TrainConfig, train))   # migrated: saved as CONFIG_VERSION

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json() + "\n")


def _without_retired(model: dict, version: int) -> dict:
    for name, (built, absent, needs) in RETIRED.items():
        if (needs is not None and not model.get(needs)) or (version > 1 and name not in model):
            meant = built
        else:
            meant = model.get(name, absent)
        if meant != built:
            raise ValueError(f"model.{name} = {json.dumps(meant)} is a retired experiment "
                             f"(docs/measurements.md): this code builds only {json.dumps(built)}")
    for name, values in RETIRED_CHOICES.items():
        if model.get(name) in values:
            raise ValueError(f"model.{name} = {json.dumps(model[name])} is a retired experiment "
                             f"(docs/measurements.md): this code builds only {', '.join(CHOICES[name])}")
    return {k: v for k, v in model.items() if k not in RETIRED}


def build_section(cls, values: dict):
    """Build a dataclass, refusing unknown keys, wrong types and values out of LIMITS/CHOICES, so a
    mismatched or hostile checkpoint fails loudly with the field's name."""
    section = "model" if cls is ModelConfig else "train"
    if not isinstance(values, dict):
        raise ValueError(f"{section} must be a JSON object")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    for name, value in values.items():
        _check_field(f"{section}.{name}", value, type(known[name].default), name)
    return cls(**values)


def _check_field(label: str, value, kind: type, name: str) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = number and float(value).is_integer()
    elif kind is float:
        ok = number and value == value and abs(value) != float("inf")
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(f"{label} must be {'an' if kind is int else 'a'} {kind.__name__}, not {json.dumps(value)[:40]}")
    low, high = LIMITS.get(name, (None, None))
    if low is not None and not low <= value <= high:
        raise ValueError(f"{label} = {value} is out of range ({low}..{high})")
    if name in CHOICES and value not in CHOICES[name]:
        raise ValueError(f"{label} = {json.dumps(value)[:40]} is not one of {', '.join(CHOICES[name])}")
