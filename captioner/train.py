"""Training: teacher forcing, a loss masked over pads, doubly stochastic attention, Adam.

`python -m captioner train --captions F --images DIR --out CKPT` runs `train()`; `fit()` is the
loop itself, usable on arrays the tests make.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import data
from .checkpoint import TRAIN_STATE, load_checkpoint, restore_optimizer, save_checkpoint
from .config import CheckpointConfig, ModelConfig, TrainConfig
from .model import build_model
from .vocab import Vocabulary


def masked_loss(targets, logits):
    """Mean cross-entropy over real words only: pads (id 0) weigh nothing.  -> per-token sum, count."""
    mask = tf.cast(targets != 0, tf.float32)                                   # (B, T)
    losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return tf.reduce_sum(losses * mask), tf.reduce_sum(mask)


def attention_penalty(attention, targets):
    """Doubly stochastic regularisation (Xu et al. eq. 14): each cell attended ~once over a caption.

    attention (B, T, N) of the real steps only; returns the sum over the batch of the mean over cells.
    """
    mask = tf.cast(targets != 0, tf.float32)[..., None]                       # (B, T, 1)
    coverage = tf.reduce_sum(attention * mask, axis=1)                         # (B, N)
    return tf.reduce_sum(tf.reduce_mean(tf.square(1.0 - coverage), axis=1))


def grounding_loss(attention, object_cells):
    """-log(attention mass on the named object's cells) at the steps that name one (see grounding.py).

    attention (B, T, N); object_cells (B, T, N), zero at steps that name no object. -> sum, steps.
    """
    supervised = tf.cast(tf.reduce_max(object_cells, axis=-1) > 0, tf.float32)    # (B, T)
    mass = tf.reduce_sum(attention * object_cells, axis=-1)                      # (B, T)
    return tf.reduce_sum(-tf.math.log(mass + 1e-6) * supervised), tf.reduce_sum(supervised)


def make_steps(model, optimizer, attention_lambda: float, clip_norm: float, jit_compile: bool = True,
               grounding_weight: float = 0.0):
    """The compiled train and validation steps: one trace per padded caption length (one, or one
    per length bucket: TrainConfig.length_step), never a shape-relaxed one, since the unrolled
    decoder needs a fixed length.

    XLA fuses the unrolled decoder steps' small ops; on a 2-core CPU that is ~25% faster again.
    Batches with object cells (data.caption_dataset with `grounding`) add `grounding_loss`.
    """
    def loss_fn(features, tokens, targets, object_cells, training):
        logits, attention = model((features, tokens), training=training)
        loss_sum, words = masked_loss(targets, logits)
        context = tf.distribute.get_replica_context()   # exact global means under MirroredStrategy
        words = context.all_reduce("sum", words)
        captions = context.all_reduce("sum", tf.cast(tf.shape(targets)[0], tf.float32))
        xent = loss_sum / words
        loss = xent + attention_lambda * attention_penalty(attention, targets) / captions
        if object_cells is not None and grounding_weight > 0:
            grounded_sum, grounded = grounding_loss(attention, object_cells)
            loss += grounding_weight * grounded_sum / tf.maximum(context.all_reduce("sum", grounded), 1.0)
        return loss, xent

    @tf.function(jit_compile=jit_compile)
    def train_step(inputs, targets, object_cells=None):
        with tf.GradientTape() as tape:
            loss, xent = loss_fn(*inputs, targets, object_cells, True)
        grads = tape.gradient(loss, model.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, xent

    @tf.function(jit_compile=jit_compile)
    def eval_step(inputs, targets, object_cells=None):
        return loss_fn(*inputs, targets, object_cells, False)
    return train_step, eval_step


def get_strategy(name: str) -> tf.distribute.Strategy:
    if not TrainConfig(distribute=name).distributed:
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":   # reads TF_CONFIG, see the README
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown --distribute {name!r}: use none, mirrored or multiworker")


def fit(config: CheckpointConfig, vocab: Vocabulary, train_data, val_data, steps_per_epoch: int,
        resume: bool = False, progress: bool = True) -> dict:
    """Train, saving a checkpoint to `config.train.out` after every epoch. -> history dict."""
    from tqdm import tqdm
    cfg, out = config.train, Path(config.train.out)
    strategy = get_strategy(cfg.distribute)
    with strategy.scope():
        model = build_model(config.model, head_weights="default", vocab=vocab)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, max(cfg.epochs * steps_per_epoch, 1), alpha=0.05)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_variables)   # eagerly, in scope: slots mirrored on every replica
        history, first_epoch = {"loss": [], "val_loss": [], "seconds": []}, 0
        if resume and (out / TRAIN_STATE).is_file():
            history, first_epoch = _resume(out, model, optimizer)
    # XLA cannot place one cluster's variables across replicas, so distributed runs go without it.
    jit = cfg.jit_compile and not cfg.distributed
    train_step, eval_step = make_steps(model, optimizer, cfg.attention_lambda, cfg.clip_norm, jit,
                                       cfg.attention_supervision)
    run = lambda step, batch: strategy.reduce("sum", strategy.run(step, args=batch), axis=None) \
        if cfg.distributed else step(*batch)
    writer = tf.summary.create_file_writer(str(out.with_name(out.name + "_logs")))
    for epoch in range(first_epoch, cfg.epochs):
        start, losses = time.perf_counter(), []
        with tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress) as bar:
            for batch in (strategy.experimental_distribute_dataset(train_data) if cfg.distributed else train_data):
                loss, _ = run(train_step, batch)
                losses.append(float(loss))   # replicas hold shares of one global mean: summed above
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}",
                                captions_per_s=f"{len(losses) * cfg.batch_size / (time.perf_counter() - start):.0f}")
        val = [float(eval_step(*batch)[1]) for batch in val_data] if val_data is not None else []
        history["loss"].append(float(np.mean(losses)))
        history["val_loss"].append(float(np.mean(val)) if val else None)
        history["seconds"].append(time.perf_counter() - start)
        _log(writer, epoch, history, float(schedule(optimizer.iterations)))
        state = {"epoch": epoch + 1, "history": history}
        save_checkpoint(out, model, vocab, config, train_state=state, optimizer=optimizer)
    save_loss_curve(history, out / "loss_curve.png")
    return history



def _resume(out: Path, model, optimizer):
    checkpoint = load_checkpoint(out)
    model.set_weights(checkpoint.model.get_weights())
    restore_optimizer(out, optimizer, model.trainable_variables)
    state = json.loads((out / TRAIN_STATE).read_text())
    return state["history"], int(state["epoch"])


def _log(writer, epoch: int, history: dict, learning_rate: float) -> None:
    with writer.as_default():
        tf.summary.scalar("loss", history["loss"][-1], step=epoch)
        tf.summary.scalar("learning_rate", learning_rate, step=epoch)
        if history["val_loss"][-1] is not None:
            tf.summary.scalar("val_loss", history["val_loss"][-1], step=epoch)
    writer.flush()


def save_loss_curve(history: dict, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = np.arange(1, len(history["loss"]) + 1)
    axes.plot(epochs, history["loss"], "o-", label="train (cross-entropy + attention penalty)")
    val = [v for v in history["val_loss"] if v is not None]
    if val:
        axes.plot(epochs[-len(val):], val, "s-", label="validation (cross-entropy)")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    return path


def train(train_config: TrainConfig, model_config: ModelConfig, cache_root, encoder_weights="default",
          resume: bool = False, progress: bool = True, known_phrases: dict | None = None) -> dict:
    """Captions file + image folder -> features (cached) -> vocabulary -> fit(). `known_phrases`:
    the words that name each boxed category, for attention supervision (grounding.category_phrases)."""
    from .encoders import build_encoder
    cfg = train_config
    captions = data.load_captions(cfg.captions, cfg.images, cfg.limit_captions, cfg.captions_per_image, cfg.seed)
    encoder = build_encoder(model_config.encoder, encoder_weights, model_config.image_size, litert=True)
    folder = data.extract_features(encoder, cfg.images, captions.files, cache_root, progress=progress)
    index, cached = data.load_feature_cache(folder)
    rows = np.array([index[f] for f in captions.files])
    features = np.asarray(cached[rows]) if cached.nbytes < 8e9 else cached[rows]
    train_images, val_images = data.split_by_image(len(captions.files), cfg.val_fraction, cfg.seed)
    is_val = np.isin(np.arange(len(captions.files)), val_images)
    train_pairs = [p for p in captions.pairs if not is_val[p[0]]]
    val_pairs = [p for p in captions.pairs if is_val[p[0]]]
    vocab = _fit_vocab(cfg, train_pairs, resume, model_config.vocab_size)
    model_config = dataclasses.replace(
        model_config, vocab_size=len(vocab), grid_size=encoder.grid_size, feature_dim=encoder.feature_dim)
    config = CheckpointConfig(model=model_config, train=cfg)
    def batches(pairs, rows, tokens, **kw):
        return data.caption_dataset(features, rows, tokens, cfg.batch_size, model_config.max_length,
                                    grounding=_grounding(cfg, captions, pairs, model_config, known_phrases), **kw)

    # Distributed runs keep one length: re-batching length buckets across replicas is untested.
    length_step = 0 if cfg.distributed else cfg.length_step
    train_rows, train_tokens = data.encode_captions(train_pairs, vocab, model_config.max_length)
    count = lambda drop: data.batches_per_epoch(train_tokens, cfg.batch_size, model_config.max_length,
                                                length_step, drop)
    full_batches = count(True) > 0   # drop each bucket's remainder only if a full batch is left
    train_data = batches(train_pairs, train_rows, train_tokens, shuffle=True, seed=cfg.seed,
                         drop_remainder=full_batches, length_step=length_step)
    # Validation keeps the full length: two traces (full batches, the last one), not two per bucket.
    val_data = batches(val_pairs, *data.encode_captions(val_pairs, vocab, model_config.max_length),
                       shuffle=False) if val_pairs else None
    steps = count(full_batches)
    return fit(config, vocab, train_data, val_data, steps, resume=resume, progress=progress)


def _grounding(cfg: TrainConfig, captions, pairs, model_config: ModelConfig, known_phrases):
    """Object cells per caption step for attention supervision, or None when it is off."""
    if cfg.attention_supervision <= 0:
        return None
    if not cfg.instances:
        raise ValueError("--attention-supervision needs --instances (a COCO instances.json with boxes)")
    from .grounding import caption_object_cells
    return caption_object_cells(cfg.instances, captions.image_ids, pairs, model_config.max_length,
                                model_config.grid_size, known_phrases)


def _fit_vocab(cfg: TrainConfig, train_pairs, resume: bool, most_words: int) -> Vocabulary:
    """A resumed run must keep the vocabulary its weights were trained with."""
    saved = Path(cfg.out) / "vocab.json"
    if resume and saved.is_file():
        return Vocabulary.load(saved)
    return Vocabulary.fit((c for _, c in train_pairs), most_words)
