"""A checkpoint is a directory: config.json, vocab.json, model.weights.h5, model_card.md.

Loading checks every file and builds a fresh model before anything is returned, so a missing,
corrupt or mismatched file fails with a message naming it and nothing is ever half-loaded.
Saving writes a sibling directory and swaps it in, so a failed save never loses the old one.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import CheckpointConfig
from .familiarity import FILE as FAMILIARITY
from .familiarity import Familiarity
from .photo_probe import FILE as PHOTO_PROBE
from .photo_probe import PhotoProbe
from .settings_seen import FILE as SETTING_CLASSES
from .settings_seen import load as load_setting_classes
from .vocab import Vocabulary

CONFIG, VOCAB, WEIGHTS, CARD = "config.json", "vocab.json", "model.weights.h5", "model_card.md"
TRAIN_STATE, OPTIMIZER = "train_state.json", "optimizer.npz"
RECORD = "heldout_figures.json"   # what `make model` measured, where it made the checkpoint
REQUIRED = (CONFIG, VOCAB, WEIGHTS)
# Every file of a checkpoint that travels with it: what `hub.push` uploads, `hub.download` fetches
# and `make model` ships (training state stays behind).
FILES = (CONFIG, VOCAB, WEIGHTS, CARD, FAMILIARITY, PHOTO_PROBE, SETTING_CLASSES, "loss_curve.png", RECORD,
         "validation_captions.jsonl")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file at fault."""


@dataclass
class Checkpoint:
    path: Path
    config: CheckpointConfig
    vocab: Vocabulary
    model: object          # captioner.model.ShowAttendTell
    card: str
    familiarity: object = None   # captioner.familiarity.Familiarity, where the checkpoint has one
    photo_probe: object = None   # captioner.photo_probe.PhotoProbe, likewise
    setting_classes: dict | None = None   # {setting: ImageNet class indices} (settings_seen.py), likewise


def load_checkpoint(path) -> Checkpoint:
    from .model import build_model
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {path}")
    for name in REQUIRED:
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name}: missing from the checkpoint")
    config = _read(path / CONFIG, lambda p: CheckpointConfig.from_dict(json.loads(p.read_text())))
    vocab = _read(path / VOCAB, Vocabulary.load)
    if len(vocab) != config.model.vocab_size:
        raise CheckpointError(f"{path / VOCAB}: {len(vocab)} words, but {path / CONFIG} says "
                              f"vocab_size={config.model.vocab_size}")
    model = build_model(config.model, copy_vocab=vocab)
    _read(path / WEIGHTS, lambda p: _load_weights(model, p))
    card = _read(path / CARD, lambda p: p.read_text(encoding="utf-8")) if (path / CARD).is_file() else ""
    familiarity = _read(path / FAMILIARITY, Familiarity.load) if (path / FAMILIARITY).is_file() else None
    if familiarity is not None and familiarity.mean.shape != (config.model.feature_dim,):
        raise CheckpointError(f"{path / FAMILIARITY}: made for {familiarity.mean.shape[0]} feature channels, "
                              f"the model has {config.model.feature_dim}")
    probe = _photo_probe(model, path / PHOTO_PROBE, config.model.feature_dim)
    settings = _read(path / SETTING_CLASSES, load_setting_classes) if (path / SETTING_CLASSES).is_file() else None
    return Checkpoint(path, config, vocab, model, card, familiarity, probe, settings)


def _photo_probe(model, path: Path, channels: int):
    """The evidence gates' photograph probe (photo_probe.py), where the checkpoint has one; attached
    to the model's copy path, whose gate reads it."""
    if not path.is_file():
        return None
    import tensorflow as tf
    probe = _read(path, PhotoProbe.load)
    if probe.weights.shape != (channels,):
        raise CheckpointError(f"{path}: made for {probe.weights.shape[0]} feature channels, the model has {channels}")
    if model.copy is not None:
        model.copy.probe = (tf.constant(probe.weights), tf.constant(probe.bias, tf.float32))
    return probe


# Where checkpoints saved before the word prior had a layer of its own (model.WordPrior, 2026-12)
# keep its gate and map in the weights file: Keras files them by attribute, and the model's `layers`
# list is walked before attributes sorting after it.
LEGACY_WEIGHT_PATHS = {"layers/dense_5": "layers/word_prior/gate", "vars": "layers/word_prior/vars"}


def _load_weights(model, path: Path) -> None:
    import h5py
    with h5py.File(path, "r") as stored:
        legacy = model.word_prior is not None and "layers/word_prior" not in stored and "vars" in stored
    if not legacy:
        return model.load_weights(str(path))
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        moved = Path(folder) / WEIGHTS
        shutil.copyfile(path, moved)
        with h5py.File(moved, "r+") as stored:
            stored.require_group("layers/word_prior")
            for old, new in LEGACY_WEIGHT_PATHS.items():
                stored.move(old, new)
        model.load_weights(str(moved))


def _read(path: Path, reader):
    try:
        return reader(path)
    except Exception as error:  # every reader failure means the same thing: this file is bad
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: cannot be loaded ({detail[:300]})") from error


def save_checkpoint(path, model, vocab: Vocabulary, config: CheckpointConfig, card: str = "",
                    train_state: dict | None = None, optimizer=None) -> Path:
    """Write a checkpoint; `train_state` and `optimizer` add what `train --resume` needs."""
    path = Path(path)
    staging = path.with_name(path.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    config.save(staging / CONFIG)
    vocab.save(staging / VOCAB)
    model.save_weights(str(staging / WEIGHTS))
    (staging / CARD).write_text(card or default_card(config, vocab))
    if train_state is not None:
        (staging / TRAIN_STATE).write_text(json.dumps(train_state, indent=1) + "\n")
    if optimizer is not None:
        np.savez(staging / OPTIMIZER, *[v.numpy() for v in optimizer.variables])
    _swap_in(staging, path)
    return path


def _swap_in(staging: Path, path: Path) -> None:
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    staging.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def default_card(config: CheckpointConfig, vocab: Vocabulary) -> str:
    m, t = config.model, config.train
    return (f"# Captioner checkpoint\n\n"
            f"- Encoder: {m.encoder} ({m.grid_size}x{m.grid_size}x{m.feature_dim} features, "
            f"input {f'{m.image_size} px' if m.image_size else 'at its own size'})\n"
            f"- Vocabulary: {len(vocab)} words\n"
            f"- Decoder: Bahdanau attention, GRU {m.units} units, embedding {m.embedding_dim}\n"
            f"- Training data: {t.captions or 'unknown'}\n"
            f"- Epochs: {t.epochs}, batch {t.batch_size}, learning rate {t.learning_rate}\n")


def restore_optimizer(path, optimizer, variables) -> None:
    """Load Adam's moments and step counter saved beside the weights (for `--resume`)."""
    file = Path(path) / OPTIMIZER
    optimizer.build(variables)
    saved = _read(file, lambda p: list(np.load(p).values()))
    if len(saved) != len(optimizer.variables) or any(
            s.shape != tuple(v.shape) for s, v in zip(saved, optimizer.variables)):
        raise CheckpointError(f"{file}: optimizer state does not match the model")
    for value, variable in zip(saved, optimizer.variables):
        variable.assign(value)
