"""Show, Attend and Tell (Xu et al. 2015) as Keras 3 layers: no training, decoding or UI logic here.

Shapes use B = batch, N = grid cells (64 for an 8x8 grid), C = encoder channels, E = embedding
width, U = GRU units, V = vocabulary size, T = caption steps, K = 1000 ImageNet classes.

The decoding loops (greedy, sampling, beam reordering) carry one decoder state and one set of
attention keys per caption and never look inside them. What they hold, by config:

    state (B, U [+ E] [+ K] [+ K+3]): U   the GRU state
                               E   the ImageNet head's embedded scores      (imagenet_head)
                               K   the classes spent on words already said  (word_prior_once)
                               K+3 the whole image's class probabilities,  (noun_evidence)
                                   the probability that it shows a person (people.py), 1 once
                                   a person was said, and 1 for a photograph, 0 for a rendered
                                   scene (photo_probe.py)
    keys  (B, N, U [+ C]):     U   the attention's feature half, per cell
                               C   the cells' features, for the word prior  (imagenet_words)

`ShowAttendTell.split_state` and `join_state` are the one place that reads and writes the layout.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .config import ModelConfig
from .people import PERSON_SEEN_AT
from .vocab import Vocabulary
from .worlds.captions import DEEDS

IMAGENET_CLASSES = 1000
WHOLE = IMAGENET_CLASSES + 3   # the state's whole-image part: classes, person, person said, photograph
NO_EVIDENCE = -1e9   # added to the log-probability of a noun the image gives no evidence for
# The words that bring one more thing into a caption (the worlds' grammar, worlds/captions.py: "and",
# "to the left of", "next to", "with"), and those that never follow a noun but start a phrase: with
# nothing left to name, "a dog the left of" or "a dog a picture of" is where a decoder that wanted
# one more thing goes instead.
FURTHER = ("and", "to", "left", "right", "above", "below", "next", "with")
STARTS = ("a", "an", "the", "one", "two", "three", "there", "picture", "image")


class BahdanauAttention(keras.layers.Layer):
    """Additive attention: score_n = v . tanh(W_f f_n + W_h h)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.feature_dense = keras.layers.Dense(units, name="feature_dense")
        self.hidden_dense = keras.layers.Dense(units, name="hidden_dense")
        self.score_dense = keras.layers.Dense(1, name="score_dense")

    def build(self, features_shape, hidden_shape):
        self.feature_dense.build(features_shape)
        self.hidden_dense.build(hidden_shape)
        self.score_dense.build(features_shape[:-1] + (self.feature_dense.units,))
        self.built = True

    def keys(self, features):
        # The feature half of the score does not change over steps: compute it once per image.
        return self.feature_dense(features)                       # (B, N, U)

    def call(self, features, keys, hidden):
        """-> context (B, E), weights (B, N)."""
        match = tf.tanh(keys + self.hidden_dense(hidden)[:, None, :])   # (B, N, U)
        scores = self.score_dense(match)                          # (B, N, 1)
        weights = tf.nn.softmax(scores[..., 0], axis=-1)          # (B, N), sums to 1 over the grid
        context = tf.einsum("bn,bne->be", weights, features)      # (B, E)
        return context, weights


class WordPrior(keras.layers.Layer):
    """A copy path from the encoder's ImageNet classifier into the words (`imagenet_words`).

    A fixed (K x V) map from the classes to the caption words that name them (WordNet,
    captioner/word_map.py) turns the classifier's opinion of the cells a step attends to into
    a mass per word, which a gate the step learns adds to the logits: the decoder still chooses every
    word, the gate decides when the classifier's opinion counts."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.gate = keras.layers.Dense(1, name="gate")

    def build(self, deep_shape=None):
        self.gate.build((None, self.config.units))
        self.word_map = self.add_weight(shape=(IMAGENET_CLASSES, self.config.vocab_size), initializer="zeros",
                                        trainable=False, name="imagenet_word_map")
        self.built = True

    def mass(self, probs):
        """(B, K) class probabilities -> (B, V): the probability mass on each word the classes name."""
        return tf.minimum(tf.matmul(probs, self.word_map), 1.0)

    def spend(self, spent, tokens):
        """With `word_prior_once`: a class that named the word just said speaks no more, (B, K)."""
        return tf.maximum(spent, tf.transpose(tf.gather(self.word_map, tokens, axis=1)))

    def call(self, deep, class_logits, tokens, spent=None):
        """deep (B, U), the head on the attended cells (B, K), previous ids (B,) -> added logits (B, V)."""
        probs = tf.nn.softmax(class_logits, axis=-1)
        mass = self.mass(probs if spent is None else probs * (1.0 - spent))   # (B, V)
        if not self.config.word_prior_first_word:
            mass *= tf.cast(tokens != Vocabulary.start_id, mass.dtype)[:, None]
        return self.config.word_prior_scale * tf.nn.softplus(self.gate(deep)) * mass


class CopyPath:
    """The pointer-generator mixture of captioner/copy_path.py (`copy_weight`): the decoder's noun
    mass, shared between its own nouns and the attended classes' names, some of which only this
    path can say. No weights (so not a Keras layer, and checkpoints are as before): constants made
    from the vocabulary and the class table."""

    def __init__(self, config: ModelConfig, tables):
        self.share = config.copy_weight
        self.words = tables.words
        self.extra = len(tables.words) - config.vocab_size
        self.size = len(tables.words)
        # Each class names one word of each number: indices, not (K, V') matrices, which every step
        # would read whole (12 MB: it doubled a caption's time on LiteRT).
        self.singular_of = tf.constant(tables.singular_of)                          # (K,)
        self.plural_of = tf.constant(tables.plural_of)                              # (K,)
        self.nouns = tf.constant([tables.noun_singular, tables.noun_plural])       # (2, V)
        self.fed_back_as = tf.constant(tables.fed_back_as)                         # (V',)
        self.mid_noun = tf.constant(tables.mid_noun)                               # (V',)
        self.threshold = config.noun_evidence
        self.evidence_class = tf.constant(tables.evidence_class)                   # (P,)
        self.evidence_word = tf.constant(tables.evidence_word)                     # (P,)
        self.needs_evidence = tf.constant(tables.needs_evidence)                   # (V',)
        number = np.zeros((2, self.size), np.float32)                              # singular, plural
        number[:, :config.vocab_size] = [tables.noun_singular, tables.noun_plural]
        number[0, tables.singular_of[tables.singular_of >= config.vocab_size]] = 1.0
        number[1, tables.plural_of[tables.plural_of >= config.vocab_size]] = 1.0
        number[1] *= 1.0 - number[0]
        self.number = tf.constant(number)                                          # (2, V')
        index = {word: i for i, word in enumerate(tables.words)}
        # What brings in one more thing ("and a mug", "to the left of a mug", "with a mug") and, right
        # after a noun, what starts one ("a monkey a mug" where the decoder wanted "a monkey and a mug").
        further = np.zeros((2, self.size), np.float32)
        further[0, [index[w] for w in FURTHER if w in index]] = 1.0
        further[1, [index[w] for w in STARTS if w in index]] = 1.0
        self.further = tf.constant(further)                                        # (2, V')
        # After "a" or "one" a noun is singular, after "two" or "three" plural, whatever the number of
        # the nouns the decoder wanted there ("two lake").
        counted = np.zeros((2, self.size), np.float32)
        counted[0, [index[w] for w in ("a", "an", "one") if w in index]] = 1.0
        counted[1, [index[w] for w in ("two", "three") if w in index]] = 1.0
        self.counted = tf.constant(counted)                                        # (2, V'): singular, plural
        self.end = tf.one_hot(Vocabulary.end_id, self.size)                        # (V',)
        deeds = np.zeros(self.size, np.float32)
        deeds[[index[w] for w in DEEDS if w in index]] = 1.0
        self.deeds = tf.constant(deeds)                                            # (V',): "walking", ...
        self.probe = None   # (weights (C,), bias): photo_probe.PhotoProbe, attached with the checkpoint's
        # A person (people.py) is one class more, K, in the gate: its words, singular and plural.
        person = [index.get("person", -1), index.get("people", -1)]
        self.person = tf.constant(person if min(person) >= 0 else [-1, -1])       # (2,): none where -1
        known = min(person) >= 0
        self.knows_person = float(known)   # a vocabulary without the words: the detectors have no say
        self.gate_singular_of = tf.concat([self.singular_of, [person[0] if known else 0]], 0)   # (K + 1,)
        self.gate_plural_of = tf.concat([self.plural_of, [person[1] if known else 0]], 0)
        extra = [(IMAGENET_CLASSES, w) for w in person] if known else []
        self.gate_evidence_class = tf.constant([*tables.evidence_class, *(k for k, _ in extra)], tf.int32)   # (P',)
        self.gate_evidence_word = tf.constant([*tables.evidence_word, *(w for _, w in extra)], tf.int32)

    def photograph(self, pooled):
        """(B, C) mean-pooled features -> (B, 1): 1 where the head's evidence counts (a photograph,
        or every image where the checkpoint has no probe), 0 for a rendered scene."""
        if self.probe is None:
            return tf.ones([tf.shape(pooled)[0], 1])
        weights, bias = self.probe
        return tf.cast(tf.linalg.matvec(pooled, weights)[:, None] + bias > 0.0, tf.float32)

    def seen(self, log_probs, whole, spent, said):
        """`noun_evidence`: in a photograph, a noun whose classes (less those already said, spent
        (B, K)) the head gives less than the threshold over the whole image is not said; its mass goes
        to the nouns of its number the image does show, by their classes' probability. With no such
        class left, no further thing is brought in. A person is one class more: the head's classes
        share what the person detector leaves, 1 - its probability. whole (B, K + 3): see WHOLE (a
        rendered scene is left as the decoder says it); log_probs (B, V'), said: the last words (B,)."""
        classes, person = whole[:, :IMAGENET_CLASSES], whole[:, IMAGENET_CLASSES:IMAGENET_CLASSES + 1]
        person_said, photograph = whole[:, -2:-1], whole[:, -1:]                  # (B, 1) each
        classes = classes * (1.0 - spent) if spent is not None else classes
        person = self.knows_person * person * tf.cast(person >= PERSON_SEEN_AT, person.dtype)   # (B, 1)
        whole = tf.concat([classes * (1.0 - person), person * (1.0 - person_said)], -1)   # (B, K + 1)
        named = tf.gather(whole, self.gate_evidence_class, axis=1)                # (B, P')
        evidence = tf.transpose(tf.math.unsorted_segment_sum(tf.transpose(named), self.gate_evidence_word,
                                                             self.size))          # (B, V')
        probs = tf.exp(log_probs)
        # Until a first noun is said, the name the head sees most is one the slot can take even below
        # the threshold: else, where the head sees nothing well, the slot's mass goes to words that
        # are no noun ("a picture of a picture of"). Further nouns need the threshold.
        nothing_said = 1.0 - person_said if spent is None else \
            tf.cast(tf.reduce_sum(spent, -1, keepdims=True) == 0, tf.float32) * (1.0 - person_said)
        likeliest = tf.one_hot(tf.argmax(evidence * self.needs_evidence, -1), self.size)   # (B, V')
        seen = tf.maximum(tf.cast(evidence >= self.threshold, tf.float32), nothing_said * likeliest)   # (B, V')
        shown = tf.maximum(tf.gather(seen, self.gate_singular_of, axis=1),
                           tf.gather(seen, self.gate_plural_of, axis=1))         # (B, K + 1): classes a seen word names
        seen = tf.maximum(seen, tf.cast(self._names(shown, shown) > 0, tf.float32))   # both numbers of each
        blocked = photograph * self.needs_evidence * (1.0 - seen)                 # (B, V')
        left = whole * shown                                                      # (B, K + 1)
        share = left / tf.maximum(tf.reduce_sum(left, -1, keepdims=True), 1e-9)
        moved = tf.einsum("bv,nv->bn", probs * blocked, self.number)              # (B, 2): singular, plural
        number = tf.transpose(tf.gather(self.counted, said, axis=1))              # (B, 2): the number said
        moved = tf.where(tf.reduce_any(number > 0, -1, keepdims=True),
                         number * tf.reduce_sum(moved, -1, keepdims=True), moved)
        given = self._names(share * moved[:, :1], share * moved[:, 1:])          # (B, V')
        nothing_left = tf.cast(tf.reduce_sum(left, -1) < self.threshold, tf.float32)[:, None]   # (B, 1)
        after_noun = tf.gather(self.needs_evidence, said)[:, None]                # (B, 1)
        further = nothing_left * tf.maximum(self.further[:1], after_noun * self.further[1:])   # (B, V')
        blocked = tf.maximum(blocked, photograph * further)
        # With nothing left to name, what a person would be doing ("walking": no class sees a deed)
        # ends the caption: the emoji world's people always do something, so after "a person" the
        # decoder has little else to say, and that little wrote "a person mixer a an".
        deeds = tf.reduce_sum(probs * blocked * self.deeds, -1, keepdims=True)    # (B, 1)
        ending = nothing_left * photograph * deeds * self.end                     # (B, V')
        return tf.math.log(tf.maximum(probs * (1.0 - blocked) + given + ending, 1e-30)) + NO_EVIDENCE * blocked

    def _names(self, singular, plural):
        """Per-class amounts (B, K + 1), the person last, onto the words naming the classes, (B, V'):
        `singular` onto each class's singular name, `plural` onto its plural."""
        weighted = tf.concat([tf.transpose(singular), tf.transpose(plural)], 0)   # (2K + 2, B)
        return tf.transpose(tf.math.unsorted_segment_sum(
            weighted, tf.concat([self.gate_singular_of, self.gate_plural_of], 0), self.size))

    def spend_person(self, whole, said):
        """Once "person" or "people" is said, the person speaks no more: whole (B, K + 3)."""
        person = tf.cast(tf.reduce_any(said[:, None] == self.person[None], -1), whole.dtype)[:, None]   # (B, 1)
        return tf.concat([whole[:, :-2], tf.maximum(whole[:, -2:-1], person), whole[:, -1:]], -1)

    def spend(self, spent, tokens):
        """The classes whose name is the word just said speak no more, (B, K)."""
        said = tokens[:, None]
        named = (self.singular_of[None, :] == said) | (self.plural_of[None, :] == said)   # (B, K)
        return tf.maximum(spent, tf.cast(named, spent.dtype))

    def __call__(self, logits, class_logits, spent=None, tokens=None):
        """logits (B, V), the head on the attended cells (B, K), the words just said (B,) ->
        log-probabilities (B, V')."""
        probs = tf.nn.softmax(logits, axis=-1)                                      # (B, V)
        classes = tf.nn.softmax(class_logits, axis=-1)
        if spent is not None:
            classes *= 1.0 - spent                                                  # (B, K)
        nouns = probs[:, None, :] * self.nouns[None]                               # (B, 2, V)
        mass = tf.reduce_sum(nouns, axis=-1)                                        # (B, 2): singular, plural
        # The decoder decides when a noun comes: the path speaks only where the decoder's own likeliest
        # word is a noun (else the diffuse noun mass it gathers into one name could outbid <end>).
        noun_mass = tf.reduce_sum(nouns, axis=1)                                    # (B, V)
        noun_step = tf.reduce_max(noun_mass, -1) >= tf.reduce_max(probs - noun_mass, -1)   # (B,)
        share = self.share * tf.cast(noun_step, probs.dtype)[:, None]
        if tokens is not None:
            share *= (1.0 - tf.gather(self.mid_noun, tokens))[:, None]
        # Each class's probability, weighted by the decoder's mass of its number, onto its name.
        weighted = tf.concat([tf.transpose(classes * mass[:, :1]), tf.transpose(classes * mass[:, 1:])], 0)   # (2K, B)
        named = tf.math.unsorted_segment_sum(weighted, tf.concat([self.singular_of, self.plural_of], 0),
                                             self.size)                             # (V', B)
        copied = share * tf.transpose(named)                                        # (B, V')
        given = share * tf.reduce_sum(classes, -1, keepdims=True) * noun_mass
        mixed = tf.pad(probs - given, [[0, 0], [0, self.extra]]) + copied
        return tf.math.log(tf.maximum(mixed, 1e-30))


class ShowAttendTell(keras.Model):
    """Projection of frozen CNN features, gated Bahdanau attention, a GRU decoder with a deep output.

    With `imagenet_head` the encoder's frozen ImageNet classifier reads the mean-pooled grid features;
    its class probabilities, embedded (E), start the GRU state and go into every step. With
    `imagenet_words` each step's word prior is the same head on the cells that step attends to."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.uses_imagenet = config.imagenet_head != "none"
        if config.imagenet_words and not self.uses_imagenet:
            raise ValueError("imagenet_words needs imagenet_head = \"softmax\"")
        if config.word_prior_once and not config.imagenet_words:
            raise ValueError("word_prior_once needs imagenet_words")
        if config.copy_weight > 0 and not config.imagenet_words:
            raise ValueError("copy_weight needs imagenet_words")
        if config.noun_evidence > 0 and not config.copy_weight > 0:
            raise ValueError("noun_evidence needs copy_weight")
        self.projection = keras.layers.Dense(config.embedding_dim, activation="relu", name="projection")
        self.init_hidden = keras.layers.Dense(config.units, activation="tanh", name="init_hidden")
        self.attention = BahdanauAttention(config.units, name="attention")
        self.gate = keras.layers.Dense(1, activation="sigmoid", name="gate")   # the paper's beta
        self.embedding = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")
        self.gru = keras.layers.GRUCell(config.units, name="gru")
        self.fc1 = keras.layers.Dense(config.units, name="fc1")
        self.dropout = keras.layers.Dropout(config.dropout)
        self.fc2 = keras.layers.Dense(config.vocab_size, name="fc2")
        if self.uses_imagenet:
            self.imagenet_fc = keras.layers.Dense(IMAGENET_CLASSES, name="imagenet_fc", trainable=False)
            self.imagenet_embed = keras.layers.Dense(config.embedding_dim, activation="relu", name="imagenet_embed")
        self.word_prior = WordPrior(config, name="word_prior") if config.imagenet_words else None
        self.copy = None   # a CopyPath, attached by build_model where config.copy_weight > 0

    @property
    def output_size(self) -> int:
        """The words a step can say: the vocabulary's, and the copy path's new ones."""
        return self.config.vocab_size + (self.copy.extra if self.copy is not None else 0)

    @property
    def gates_nouns(self) -> bool:
        return self.copy is not None and self.config.noun_evidence > 0

    def split_state(self, state):
        """(B, U [+ E] [+ K] [+ K + 3]) -> GRU state (B, U), ImageNet evidence (B, E), spent (B, K) and
        the whole image's part (B, K + 3: WHOLE), each None where the config leaves it out."""
        units, width = self.config.units, self.config.embedding_dim
        whole = None
        if self.gates_nouns:
            state, whole = state[:, :-WHOLE], state[:, -WHOLE:]
        evidence = state[:, units:units + width] if self.uses_imagenet else None
        spent = state[:, -IMAGENET_CLASSES:] if self.config.word_prior_once else None
        return state[:, :units], evidence, spent, whole

    @staticmethod
    def join_state(hidden, evidence, spent, whole=None):
        return tf.concat([part for part in (hidden, evidence, spent, whole) if part is not None], axis=-1)

    def encode(self, features, people=None):
        """Per-image work done once before decoding: (B, N, C) -> projected, keys, first state.
        people (B,): the probability that each image shows a person (people.py); None: none does."""
        projected = self.projection(features)                     # (B, N, E)
        keys = self.attention.keys(projected)                     # (B, N, U)
        if self.word_prior is not None:   # the cells themselves: step() applies the head to the attended mix
            keys = tf.concat([keys, features], axis=-1)            # (B, N, U + C)
        summary = tf.reduce_mean(projected, axis=1)                # (B, E)
        evidence = spent = whole = None
        if self.uses_imagenet:
            class_probs = tf.nn.softmax(self.imagenet_fc(tf.reduce_mean(features, axis=1)), axis=-1)   # (B, K)
            evidence = self.imagenet_embed(class_probs)            # (B, E)
            summary = tf.concat([summary, evidence], axis=-1)
            if self.gates_nouns:
                photograph = self.copy.photograph(tf.reduce_mean(features, axis=1))   # (B, 1)
                person = tf.zeros_like(photograph) if people is None else people[:, None] * photograph
                whole = tf.concat([class_probs, person, tf.zeros_like(photograph), photograph], -1)   # (B, K + 3)
        if self.config.word_prior_once:                            # no class has spoken yet
            spent = tf.zeros([tf.shape(features)[0], IMAGENET_CLASSES], features.dtype)
        return projected, keys, self.join_state(self.init_hidden(summary), evidence, spent, whole)

    def step(self, tokens, state, projected, keys, training=False):
        """One decoder step: previous word ids (B,) -> logits (B, V), new state, attention (B, N)."""
        hidden, evidence, spent, whole = self.split_state(state)
        said = tokens
        if self.copy is not None:   # a word only the copy path says is read as a noun the decoder knows
            tokens = tf.gather(self.copy.fed_back_as, said)
        if spent is not None:   # the classes that named a word already said, the last word included
            spent = self.word_prior.spend(spent, tokens)
            if self.copy is not None:
                spent = self.copy.spend(spent, said)
        if whole is not None:
            whole = self.copy.spend_person(whole, said)
        units = self.config.units
        context, weights = self.attention(projected, keys[..., :units], hidden)   # (B, E), (B, N)
        context = self.gate(hidden) * context
        embedded = self.embedding(tokens)                         # (B, E)
        cues = [evidence] if evidence is not None else []
        output, states = self.gru(tf.concat([context, embedded] + cues, axis=-1), [hidden], training=training)
        hidden = states[0] if isinstance(states, (list, tuple)) else states
        # The paper's deep output (eq. 7) sees the context and the previous word as well as the state,
        # so the word chosen at a step depends directly on where that step looked.
        deep = self.fc1(tf.concat([output, context, embedded] + cues, axis=-1))   # (B, U)
        deep = self.dropout(deep, training=training)
        logits = self.fc2(deep)
        if self.word_prior is not None:
            # The head is linear and the weights sum to 1, so the head on the attended mix of cells is
            # the attended mix of the cells' logits: one head a step, not one per cell.
            attended = self.imagenet_fc(tf.einsum("bn,bnc->bc", weights, keys[..., units:]))   # (B, K)
            logits += self.word_prior(deep, attended, tokens, spent)
            if self.copy is not None:
                logits = self.copy(logits, attended, spent, said)                  # (B, V'): log-probabilities
            if whole is not None:
                logits = self.copy.seen(logits, whole, spent, said)                 # (B, V')
        return logits, self.join_state(hidden, evidence, spent, whole), weights

    def call(self, inputs, training=False):
        """Teacher forcing: (features (B,N,C), input tokens (B,T)) -> logits (B,T,V), attention (B,T,N)."""
        features, tokens = inputs
        projected, keys, state = self.encode(features)
        steps = tokens.shape[1]
        if steps is None:
            raise ValueError("teacher forcing needs a fixed caption length (pad every batch to one length)")
        logits, attention = [], []
        for t in range(steps):   # unrolled: the padded length is fixed, and this trains faster on CPU
            step_logits, state, weights = self.step(tokens[:, t], state, projected, keys, training)
            logits.append(step_logits)
            attention.append(weights)
        return tf.stack(logits, axis=1), tf.stack(attention, axis=1)

    def build(self, input_shape=None):
        """Create every variable from the config alone, so weights can be loaded before any call."""
        c = self.config
        self.projection.build((None, None, c.feature_dim))
        cues = c.embedding_dim if self.uses_imagenet else 0        # the ImageNet evidence's width
        if self.uses_imagenet:
            self.imagenet_fc.build((None, c.feature_dim))
            self.imagenet_embed.build((None, IMAGENET_CLASSES))
        if self.word_prior is not None:
            self.word_prior.build()
        self.init_hidden.build((None, c.embedding_dim + cues))
        self.attention.build((None, None, c.embedding_dim), (None, c.units))
        self.gate.build((None, c.units))
        self.embedding.build((None,))
        self.gru.build((None, 2 * c.embedding_dim + cues))
        self.fc1.build((None, c.units + 2 * c.embedding_dim + cues))
        self.fc2.build((None, c.units))
        self.built = True


def build_model(config: ModelConfig, head_weights=None, vocab=None, copy_vocab=None) -> ShowAttendTell:
    """`head_weights`: where the ImageNet head comes from when the config uses it ("default": the
    shipped Lite0 file; None: leave it for the checkpoint's weights to fill). `vocab`: with
    imagenet_words, the vocabulary the class -> word map is made for (None: the checkpoint's).
    `copy_vocab` (or `vocab`): with copy_weight, the vocabulary the copy path's tables extend."""
    model = ShowAttendTell(config, name="show_attend_tell")
    model.build()
    if config.copy_weight > 0 and (copy_vocab or vocab) is not None:
        from .copy_path import copy_tables_for
        model.copy = CopyPath(config, copy_tables_for(tuple((copy_vocab or vocab).words)))
    if model.uses_imagenet and head_weights is not None:
        load_imagenet_head(model, head_weights)
    if model.word_prior is not None and vocab is not None:
        from .word_map import word_map
        model.word_prior.word_map.assign(word_map(vocab, IMAGENET_CLASSES))
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
