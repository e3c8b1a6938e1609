"""Show, Attend and Tell (Xu et al. 2015) as Keras 3 layers: no training, decoding or UI logic here.

Shapes use B = batch, N = grid cells (49 for a 7x7 grid), C = encoder channels, E = embedding
width, U = GRU units, V = vocabulary size, T = caption steps.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from .config import ModelConfig
from .vocab import Vocabulary

IMAGENET_CLASSES = 1000


class BahdanauAttention(keras.layers.Layer):
    """Additive attention: score_n = v . tanh(W_f f_n + W_h h).

    With `counts`, also how many cells match: sum_n sigmoid(u . tanh(W_f f_n + W_h h) + b), (B, 1),
    which unlike the softmax weights grows with the number of things that match."""

    def __init__(self, units: int, counts: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.feature_dense = keras.layers.Dense(units, name="feature_dense")
        self.hidden_dense = keras.layers.Dense(units, name="hidden_dense")
        self.score_dense = keras.layers.Dense(1, name="score_dense")
        self.count_dense = keras.layers.Dense(1, name="count_dense") if counts else None

    def build(self, features_shape, hidden_shape):
        self.feature_dense.build(features_shape)
        self.hidden_dense.build(hidden_shape)
        self.score_dense.build(features_shape[:-1] + (self.feature_dense.units,))
        if self.count_dense is not None:
            self.count_dense.build(features_shape[:-1] + (self.feature_dense.units,))
        self.built = True

    def keys(self, features):
        # The feature half of the score does not change over steps: compute it once per image.
        return self.feature_dense(features)                       # (B, N, U)

    def call(self, features, keys, hidden):
        """-> context (B, E), weights (B, N), and with `counts` the number of matching cells (B, 1)."""
        match = tf.tanh(keys + self.hidden_dense(hidden)[:, None, :])   # (B, N, U)
        scores = self.score_dense(match)                          # (B, N, 1)
        weights = tf.nn.softmax(scores[..., 0], axis=-1)          # (B, N), sums to 1 over the grid
        context = tf.einsum("bn,bne->be", weights, features)      # (B, E)
        if self.count_dense is None:
            return context, weights, None
        return context, weights, tf.reduce_sum(tf.sigmoid(self.count_dense(match)), axis=1)


class ShowAttendTell(keras.Model):
    """Projection of frozen CNN features, Bahdanau attention, a GRU decoder with a deep output.

    With `config.imagenet_head` the encoder's frozen ImageNet classifier reads the mean-pooled grid
    features; its 1000 scores, embedded (I = embedding_dim), start the GRU state and are fed to
    every step. They ride along at the end of the decoder state, (B, U + I), so the decoding loops
    (greedy, sampling, beam reordering) carry them without knowing they are there. With
    `word_prior = "attended"` the grid features ride at the end of the attention keys,
    (B, N, U + C), for the same reason: each step's prior is the head on what that step attends to.
    With `word_prior_once` the classes already spent ride at the very end of the state, (B, ... + 1000).
    """

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.projection = keras.layers.Dense(config.embedding_dim, activation="relu", name="projection")
        self.init_hidden = keras.layers.Dense(config.units, activation="tanh", name="init_hidden")
        self.attention = BahdanauAttention(config.units, counts=config.attention_count, name="attention")
        self.gate = keras.layers.Dense(1, activation="sigmoid", name="gate")
        self.embedding = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")
        self.gru = keras.layers.GRUCell(config.units, name="gru")
        self.fc1 = keras.layers.Dense(config.units, name="fc1")
        self.dropout = keras.layers.Dropout(config.dropout)
        self.fc2 = keras.layers.Dense(config.vocab_size, name="fc2")
        self.uses_imagenet = config.imagenet_head != "none"
        self.uses_words = config.imagenet_words
        if self.uses_words and not self.uses_imagenet:
            raise ValueError("imagenet_words needs imagenet_head (softmax or logits)")
        self.prior_once = config.word_prior_once
        if self.prior_once and not (self.uses_words and config.word_prior == "attended"):
            raise ValueError('word_prior_once needs imagenet_words with word_prior = "attended", not '
                             f'"{config.word_prior}" (the image prior is one mass per image, fixed before the first word)')
        if self.uses_words:
            self.word_gate = keras.layers.Dense(1, name="imagenet_word_gate")
        if self.uses_imagenet:
            self.imagenet_fc = keras.layers.Dense(IMAGENET_CLASSES, name="imagenet_fc", trainable=False)
            self.imagenet_embed = keras.layers.Dense(config.embedding_dim, activation="relu", name="imagenet_embed")

    def imagenet_evidence(self, features):
        """(B, N, C) grid features -> (B, I): the frozen head's scores on the pooled features, embedded;
        with imagenet_words, also the class probability mass on each word, (B, I + V)."""
        logits = self.imagenet_fc(tf.reduce_mean(features, axis=1))          # (B, 1000) logits
        probs = tf.nn.softmax(logits, axis=-1)
        if self.config.imagenet_head == "softmax":
            scores = probs
        else:   # logits, centred per image: their level says nothing, their differences everything
            scores = (logits - tf.reduce_mean(logits, -1, keepdims=True)) / 4.0
        evidence = self.imagenet_embed(scores)
        if self.uses_words and self.config.word_prior == "image":
            evidence = tf.concat([evidence, self.word_mass(probs)], axis=-1)
        return evidence

    def word_mass(self, probs):
        """(B, 1000) class probabilities -> (B, V): the probability mass on each word the classes name."""
        return tf.minimum(tf.matmul(probs, self.word_map), 1.0)

    @property
    def attends_prior(self) -> bool:
        return self.uses_words and self.config.word_prior == "attended"

    def encode(self, features):
        """Per-image work done once before decoding: (B, N, C) -> projected, keys, first hidden."""
        projected = self.projection(features)                     # (B, N, E)
        keys = self.attention.keys(projected)                     # (B, N, U)
        if self.attends_prior:   # the cells themselves: step() applies the head to the attended mix
            keys = tf.concat([keys, features], axis=-1)            # (B, N, U + C)
        summary = tf.reduce_mean(projected, axis=1)                # (B, E)
        if self.uses_imagenet:
            evidence = self.imagenet_evidence(features)            # (B, I) [+ V word mass]
            summary = tf.concat([summary, evidence[:, :self.config.embedding_dim]], axis=-1)
        if self.config.initial_state == "zeros":   # the tutorial: the image reaches the GRU only through attention
            hidden = tf.zeros([tf.shape(features)[0], self.config.units])
        else:                                      # the paper: a summary of the whole image
            hidden = self.init_hidden(summary)                     # (B, U)
        if self.uses_imagenet:
            hidden = tf.concat([hidden, evidence], axis=-1)        # (B, U + I): carried unchanged
        if self.prior_once:                                        # no class has spoken yet
            hidden = tf.concat([hidden, tf.zeros([tf.shape(features)[0], IMAGENET_CLASSES], hidden.dtype)], axis=-1)
        return projected, keys, hidden

    def step(self, tokens, hidden, projected, keys, training=False):
        """One decoder step: previous word ids (B,) -> logits (B, V), new hidden, attention (B, N)."""
        extra = []
        if self.prior_once:   # the classes that named a word already said, updated with the last word
            hidden, spent = hidden[:, :-IMAGENET_CLASSES], hidden[:, -IMAGENET_CLASSES:]
            spent = tf.maximum(spent, tf.transpose(tf.gather(self.word_map, tokens, axis=1)))   # (B, 1000)
        if self.uses_imagenet:                                    # the evidence rides at the state's end
            units = self.config.units
            hidden, evidence = hidden[:, :units], hidden[:, units:]
            extra = [evidence[:, :self.config.embedding_dim]]
        if self.attends_prior:
            keys, cells = keys[..., :self.config.units], keys[..., self.config.units:]
        context, weights, matching = self.attention(projected, keys, hidden)  # (B, E), (B, N), (B, 1)
        if self.config.attention_gate:
            context = self.gate(hidden) * context
        embedded = self.embedding(tokens)                         # (B, E)
        # A sum over the grid's cells (0 to N); / 4 keeps a few matching cells within a few units.
        # (count_dense starts at bias 0, so an untrained step sees N / 8: the GRU learns the offset.)
        cues = extra + ([matching / 4.0] if matching is not None else [])
        output, states = self.gru(tf.concat([context, embedded] + cues, axis=-1), [hidden], training=training)
        hidden = states[0] if isinstance(states, (list, tuple)) else states
        # The paper's deep output (eq. 7) sees the context and the previous word as well as the state,
        # so the word chosen at a step depends directly on where that step looked.
        deep = self.fc1(tf.concat([output, context, embedded] + cues, axis=-1))   # (B, U)
        if extra:
            hidden = tf.concat([hidden, evidence], axis=-1)
        deep = self.dropout(deep, training=training)
        logits = self.fc2(deep)
        if self.uses_words:   # the classifier's word prior, weighed by a gate the step learns
            if self.attends_prior:
                # The head is linear and the weights sum to 1, so the head on the attended mix of
                # cells is the attended mix of the cells' logits: one head a step, not one per cell (N = 64).
                attended = self.imagenet_fc(tf.einsum("bn,bnc->bc", weights, cells))   # (B, 1000)
                probs = tf.nn.softmax(attended, axis=-1)
                mass = self.word_mass(probs * (1.0 - spent) if self.prior_once else probs)   # (B, V)
            else:
                mass = evidence[:, self.config.embedding_dim:]
            if not self.config.word_prior_first_word:
                mass *= tf.cast(tokens != Vocabulary.start_id, mass.dtype)[:, None]
            logits += self.config.word_prior_scale * tf.nn.softplus(self.word_gate(deep)) * mass
        if self.prior_once:
            hidden = tf.concat([hidden, spent], axis=-1)
        return logits, hidden, weights

    def call(self, inputs, training=False):
        """Teacher forcing: (features (B,N,C), input tokens (B,T)) -> logits (B,T,V), attention (B,T,N)."""
        features, tokens = inputs
        projected, keys, hidden = self.encode(features)
        steps = tokens.shape[1]
        if steps is None:
            raise ValueError("teacher forcing needs a fixed caption length (pad every batch to one length)")
        logits, attention = [], []
        for t in range(steps):   # unrolled: the padded length is fixed, and this trains faster on CPU
            step_logits, hidden, weights = self.step(tokens[:, t], hidden, projected, keys, training)
            logits.append(step_logits)
            attention.append(weights)
        return tf.stack(logits, axis=1), tf.stack(attention, axis=1)

    def build(self, input_shape=None):
        """Create every variable from the config alone, so weights can be loaded before any call."""
        c = self.config
        self.projection.build((None, None, c.feature_dim))
        extra = c.embedding_dim if self.uses_imagenet else 0       # the ImageNet evidence's width
        cues = extra + (1 if c.attention_count else 0)            # and the matching cells' count
        if self.uses_imagenet:
            self.imagenet_fc.build((None, c.feature_dim))
            self.imagenet_embed.build((None, IMAGENET_CLASSES))
        if self.uses_words:
            self.word_gate.build((None, c.units))
            self.word_map = self.add_weight(shape=(IMAGENET_CLASSES, c.vocab_size), initializer="zeros",
                                            trainable=False, name="imagenet_word_map")
        self.init_hidden.build((None, c.embedding_dim + extra))
        self.attention.build((None, None, c.embedding_dim), (None, c.units))
        self.gate.build((None, c.units))
        self.embedding.build((None,))
        self.gru.build((None, 2 * c.embedding_dim + cues))
        self.fc1.build((None, c.units + 2 * c.embedding_dim + cues))
        self.fc2.build((None, c.units))
        self.built = True


def build_model(config: ModelConfig, head_weights=None, vocab=None) -> ShowAttendTell:
    """`head_weights`: where the ImageNet head comes from when the config uses it ("default": the
    shipped Lite0 file; None: leave it for the checkpoint's weights to fill). `vocab`: with
    imagenet_words, the vocabulary the class -> word map is made for (None: the checkpoint's)."""
    model = ShowAttendTell(config, name="show_attend_tell")
    model.build()
    if model.uses_imagenet and head_weights is not None:
        load_imagenet_head(model, head_weights)
    if model.uses_words and vocab is not None:
        from .imagenet_words import word_map
        model.word_map.assign(word_map(vocab, IMAGENET_CLASSES))
    return model


def load_imagenet_head(model: ShowAttendTell, path="default") -> None:
    """Copy the encoder's classifier (fc/kernel, fc/bias of the converted Lite0 file) into the model."""
    import numpy as np
    from pathlib import Path
    from .encoders import LITE0_WEIGHTS
    if model.config.encoder != "efficientnet_lite0":
        raise ValueError(f"imagenet_head needs the efficientnet_lite0 encoder, not {model.config.encoder}")
    path = LITE0_WEIGHTS if path == "default" else Path(path)
    with np.load(path) as stored:
        model.imagenet_fc.set_weights([stored["fc/kernel"].astype(np.float32), stored["fc/bias"].astype(np.float32)])
