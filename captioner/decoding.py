"""Greedy, sampling and beam search: plain TensorFlow functions over one shared decoder step.

Each function runs the whole caption loop inside TensorFlow, so `Decoder` can compile it once
(`tf.function` with a fixed input signature) and never retrace, whatever the caption length.
All return word ids (B, T), each word's probability under the model (B, T), the attention map of
the step that produced it (B, T, N) and the caption's log-probability (B,), <end> included.
"""
from __future__ import annotations

import tensorflow as tf

from .vocab import Vocabulary

PAD, START, END = Vocabulary.pad_id, Vocabulary.start_id, Vocabulary.end_id
NEG_INF = -1e9


def _log_probs(model, tokens, state):
    """The shared step: previous ids (B,) -> log-probabilities (B, V), new state, attention (B, N)."""
    hidden, projected, keys = state
    logits, hidden, attention = model.step(tokens, hidden, projected, keys)
    vocab = tf.shape(logits)[-1]
    never = tf.one_hot(PAD, vocab) + tf.one_hot(START, vocab)     # never words, at any step
    log_probs = tf.nn.log_softmax(logits + NEG_INF * never)
    return log_probs, (hidden, projected, keys), attention


def _choose_and_record(model, features, max_length, choose):
    """The loop shared by greedy and sampling; `choose(log_probs, step)` picks the next ids (B,)."""
    projected, keys, hidden = model.encode(features)
    state = (hidden, projected, keys)
    batch = tf.shape(features)[0]
    tokens = tf.fill([batch], START)
    finished = tf.zeros([batch], tf.bool)
    total = tf.zeros([batch])
    ids_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    probs_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    attention_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    for t in tf.range(max_length):
        log_probs, state, attention = _log_probs(model, tokens, state)
        tokens = tf.where(finished, PAD, choose(log_probs, t))                 # (B,)
        token_log_prob = tf.gather(log_probs, tokens, batch_dims=1)            # (B,)
        total += tf.where(finished, 0.0, token_log_prob)
        ids_ta = ids_ta.write(t, tokens)
        probs_ta = probs_ta.write(t, tf.exp(token_log_prob))
        attention_ta = attention_ta.write(t, attention)
        finished = finished | tf.equal(tokens, END)
        if tf.reduce_all(finished):
            break
    return (tf.transpose(ids_ta.stack()), tf.transpose(probs_ta.stack()),
            tf.transpose(attention_ta.stack(), [1, 0, 2]), total)


def greedy_search(model, features, max_length):
    return _choose_and_record(model, features, max_length,
                              lambda log_probs, t: tf.argmax(log_probs, -1, output_type=tf.int32))


def sample_search(model, features, max_length, temperature, top_k, seed):
    """Multinomial sampling; `seed` (2,) int32 makes it repeatable (stateless RNG, one draw per step)."""
    def choose(log_probs, t):
        logits = log_probs / tf.maximum(temperature, 1e-3)
        vocab = tf.shape(logits)[-1]
        k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
        kth = tf.math.top_k(logits, k).values[:, -1:]                          # (B, 1)
        logits = tf.where(logits < kth, NEG_INF, logits)
        step_seed = tf.stack([seed[0], seed[1] + t])
        return tf.cast(tf.random.stateless_categorical(logits, 1, step_seed)[:, 0], tf.int32)
    return _choose_and_record(model, features, max_length, choose)


def beam_search(model, features, max_length, beam_size, length_alpha):
    """Beam search for ONE image (1, N, C), all beams run as one batch of size K.

    Finished beams stay in the batch and extend with <pad> at no cost, so shapes never change and
    the loop compiles; if <end> never comes, beams simply stop at `max_length`. The best beam is
    picked by log-probability / length ** length_alpha (length normalisation, Wu et al. 2016).
    """
    k = beam_size
    projected, keys, hidden = model.encode(tf.tile(features, [k, 1, 1]))       # (K, N, E)
    state = (hidden, projected, keys)
    cells = tf.shape(projected)[1]
    scores = tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)                  # only beam 0 is live
    tokens = tf.fill([k], START)
    finished = tf.zeros([k], tf.bool)
    ids = tf.zeros([k, max_length], tf.int32)
    probs = tf.zeros([k, max_length])
    attention = tf.zeros([k, max_length, cells])
    steps = tf.constant(0)
    for t in tf.range(max_length):
        log_probs, state, step_attention = _log_probs(model, tokens, state)   # (K, V)
        vocab = tf.shape(log_probs)[1]
        pad_only = tf.where(tf.range(vocab) == PAD, 0.0, NEG_INF)[None, :]
        log_probs = tf.where(finished[:, None], pad_only, log_probs)
        candidates = tf.reshape(scores[:, None] + log_probs, [-1])            # (K * V,)
        scores, flat = tf.math.top_k(candidates, k)
        parent, tokens = flat // vocab, flat % vocab                           # (K,), (K,)
        state = tuple(tf.gather(s, parent) for s in state)
        here = tf.one_hot(t, max_length, on_value=True, off_value=False)[None, :]   # (1, L)
        ids = tf.where(here, tokens[:, None], tf.gather(ids, parent))
        word_probs = tf.exp(tf.gather_nd(log_probs, tf.stack([parent, tokens], 1)))
        probs = tf.where(here, word_probs[:, None], tf.gather(probs, parent))
        attention = tf.where(here[..., None], tf.gather(step_attention, parent)[:, None, :],
                             tf.gather(attention, parent))
        finished = tf.gather(finished, parent) | tf.equal(tokens, END)
        steps = t + 1
        if tf.reduce_all(finished) or _cannot_be_beaten(scores, ids, finished, max_length, length_alpha):
            break
    best = tf.argmax(_normalised(scores, ids, length_alpha))
    return (ids[best][None, :steps], probs[best][None, :steps],
            attention[best][None, :steps], scores[best][None])


def _normalised(scores, ids, length_alpha):
    lengths = tf.reduce_sum(tf.cast(ids != PAD, tf.float32), 1)              # words + <end> so far
    return scores / tf.pow(tf.maximum(lengths, 1.0), length_alpha)


def _cannot_be_beaten(scores, ids, finished, max_length, length_alpha):
    """True when no live beam can end above the best finished one: a live beam's log-probability
    only falls, so its best possible normalised score is today's score / max_length ** alpha."""
    best_done = tf.reduce_max(tf.where(finished, _normalised(scores, ids, length_alpha), NEG_INF))
    longest = tf.pow(tf.cast(max_length, tf.float32), length_alpha)
    best_live = tf.reduce_max(tf.where(finished, NEG_INF, scores / longest))
    return best_done >= best_live


class Decoder:
    """The three strategies compiled once for one model; tensors in, tensors out."""

    def __init__(self, model, jit_compile: bool = False):
        feature_dim = model.config.feature_dim
        features = tf.TensorSpec([None, None, feature_dim], tf.float32)
        scalar_int, scalar_float = tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)
        compile_ = lambda fn, *spec: tf.function(fn, input_signature=[features, scalar_int, *spec],
                                                 jit_compile=jit_compile, reduce_retracing=True)
        self.greedy = compile_(lambda f, n: greedy_search(model, f, n))
        self.sample = compile_(lambda f, n, temp, top_k, seed: sample_search(model, f, n, temp, top_k, seed),
                               scalar_float, scalar_int, tf.TensorSpec([2], tf.int32))
        self.beam = compile_(lambda f, n, k, alpha: beam_search(model, f, n, k, alpha),
                             scalar_int, scalar_float)

    def tracing_count(self) -> int:
        return sum(fn.experimental_get_tracing_count() for fn in (self.greedy, self.sample, self.beam))
