"""Greedy, sampling and beam search: plain TensorFlow functions over one shared decoder step.

Each function runs the whole caption loop inside TensorFlow, so `Searches` can compile it once
(`tf.function` with a fixed input signature) and never retrace, whatever the caption length.
All return word ids (B, T), each word's probability under the model (B, T), the attention map of
the step that produced it (B, T, N) and the caption's log-probability (B,), <end> included.
"""
from __future__ import annotations

import tensorflow as tf

from .config import LIMITS
from .vocab import REPEAT_WORDS, Vocabulary

PAD, START, END = Vocabulary.pad_id, Vocabulary.start_id, Vocabulary.end_id
NEG_INF = -1e9
# A decoder that has lost its way can loop ("a picture of a picture of a picture of ..." to the
# length limit), so a word that would repeat REPEAT_WORDS words already said is never chosen. The
# searches keep every caption's words so far in a fixed (B, HISTORY) array: fixed, so that the loop
# still compiles and converts to LiteRT.
HISTORY = LIMITS["max_length"][1]


def _log_probs(model, tokens, state, history, t):
    """The shared step: previous ids (B,), the words so far (B, HISTORY) of which t are said ->
    log-probabilities (B, V), new state, attention (B, N)."""
    hidden, projected, keys = state
    logits, hidden, attention = model.step(tokens, hidden, projected, keys)
    vocab = tf.shape(logits)[-1]
    never = tf.one_hot(PAD, vocab) + tf.one_hot(START, vocab)     # never words, at any step
    # A caption has at least one word: a weak model's best beam can otherwise be <end> at once.
    first = tf.cast(tf.equal(tokens, START), logits.dtype)[:, None] * tf.one_hot(END, vocab)   # (B, V)
    log_probs = tf.nn.log_softmax(logits + NEG_INF * (never + first + repeats(history, t, vocab)))
    return log_probs, (hidden, projected, keys), attention


def repeats(history, t, vocab):
    """(B, V): 1 for each word that would make the last REPEAT_WORDS words ones already said.
    history (B, H): each caption's words, t of them said so far (zeros after)."""
    n, windows = REPEAT_WORDS, history.shape[1] - REPEAT_WORDS + 1
    last = tf.gather(history, tf.maximum(t - (n - 1) + tf.range(n - 1), 0), axis=1)   # (B, n-1)
    said = tf.range(windows) + (n - 1) < t                                    # (W,): window's next word said
    match = tf.broadcast_to(said[None], tf.shape(history[:, :windows]))      # (B, W)
    for i in range(n - 1):
        match &= tf.equal(history[:, i:i + windows], last[:, i:i + 1])
    following = history[:, n - 1:]                                            # (B, W): the word after each window
    rows = tf.broadcast_to(tf.range(tf.shape(history)[0])[:, None], tf.shape(following))
    counts = tf.scatter_nd(tf.reshape(tf.stack([rows, following], -1), [-1, 2]),
                           tf.reshape(tf.cast(match, tf.float32), [-1]), [tf.shape(history)[0], vocab])
    return tf.minimum(counts, 1.0)


def _said(history, t, tokens):
    """history (B, H) with tokens (B,) written at step t."""
    return history + tokens[:, None] * tf.one_hot(t, HISTORY, dtype=tf.int32)[None]


def _choose_and_record(model, features, max_length, choose, people=None):
    """The loop shared by greedy and sampling; `choose(log_probs, step)` picks the next ids (B,).
    people (B,): the probability that each image shows a person (people.py), or None."""
    projected, keys, hidden = model.encode(features, people)
    state = (hidden, projected, keys)
    batch = tf.shape(features)[0]
    tokens = tf.fill([batch], START)
    finished = tf.zeros([batch], tf.bool)
    total = tf.zeros([batch])
    # Fixed-size arrays with static element shapes (where known), read back up to the steps taken:
    # the form the LiteRT converter can lower (litert.py runs this loop there for one image).
    rows, cells = features.shape[:1], features.shape[:2]
    ids_ta = tf.TensorArray(tf.int32, size=max_length, element_shape=rows)
    probs_ta = tf.TensorArray(tf.float32, size=max_length, element_shape=rows)
    attention_ta = tf.TensorArray(tf.float32, size=max_length, element_shape=cells)
    history = tf.zeros([batch, HISTORY], tf.int32)
    steps = tf.constant(0)
    for t in tf.range(max_length):
        log_probs, state, attention = _log_probs(model, tokens, state, history, t)
        tokens = tf.where(finished, PAD, choose(log_probs, t))                 # (B,)
        history = _said(history, t, tokens)
        token_log_prob = tf.gather(log_probs, tokens, batch_dims=1)            # (B,)
        total += tf.where(finished, 0.0, token_log_prob)
        ids_ta = ids_ta.write(t, tokens)
        probs_ta = probs_ta.write(t, tf.exp(token_log_prob))
        attention_ta = attention_ta.write(t, attention)
        finished = finished | tf.equal(tokens, END)
        steps = t + 1
        if tf.reduce_all(finished):
            break
    return (tf.transpose(ids_ta.stack()[:steps]), tf.transpose(probs_ta.stack()[:steps]),
            tf.transpose(attention_ta.stack()[:steps], [1, 0, 2]), total)


def greedy_search(model, features, max_length, people=None):
    return _choose_and_record(model, features, max_length,
                              lambda log_probs, t: tf.argmax(log_probs, -1, output_type=tf.int32), people)


def sample_search(model, features, max_length, temperature, top_k, seed, people=None):
    """Multinomial sampling; `seed` (2,) int32 makes it repeatable (stateless RNG, one draw per step)."""
    def choose(log_probs, t):
        logits = log_probs / tf.maximum(temperature, 1e-3)
        vocab = tf.shape(logits)[-1]
        k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
        kth = tf.math.top_k(logits, k).values[:, -1:]                          # (B, 1)
        logits = tf.where(logits < kth, NEG_INF, logits)
        step_seed = tf.stack([seed[0], seed[1] + t])
        return tf.cast(tf.random.stateless_categorical(logits, 1, step_seed)[:, 0], tf.int32)
    return _choose_and_record(model, features, max_length, choose, people)


def beam_step(model, tokens, hidden, projected, keys, scores, lengths, history, t):
    """One step (the t-th word) of K beams -> the K best continuations: words, parent beams, reordered
    hidden state, scores, lengths, words so far (history) and the attention of the step that chose
    each word, all (K, ...)."""
    k, vocab = tf.shape(tokens)[0], model.output_size
    log_probs, (hidden, _, _), attention = _log_probs(model, tokens, (hidden, projected, keys), history, t)
    pad_only = tf.constant([[0.0] + [NEG_INF] * (vocab - 1)])                 # (1, V): PAD is id 0
    log_probs = tf.where(_finished(tokens)[:, None], pad_only, log_probs)      # (K, V)
    scores, flat = tf.math.top_k(tf.reshape(scores[:, None] + log_probs, [-1]), k)
    parent, tokens = flat // vocab, flat % vocab                               # (K,), (K,)
    lengths = tf.gather(lengths, parent) + tf.cast(tokens != PAD, tf.float32)  # <pad> only after <end>
    history = _said(tf.gather(history, parent), t, tokens)                     # (K, HISTORY)
    return (tokens, parent, tf.gather(hidden, parent), scores, lengths, history,
            tf.gather(attention, parent))


def beam_search(model, features, max_length, beam_size, length_alpha, advance=None, people=None):
    """Beam search for ONE image (1, N, C), all beams run as one batch of size K.

    Finished beams stay in the batch and extend with <pad> at no cost, so shapes never change and
    the loop compiles; if <end> never comes, beams simply stop at `max_length`. A step records only
    each beam's word, parent beam, attention and score; the best caption is read back through the
    parents at the end. The loop carries as few tensors as it can: on a CPU each one costs
    control-flow work at every step. The best beam is picked by log-probability / length **
    length_alpha (length normalisation, Wu et al. 2016).
    """
    k = beam_size
    projected, keys, hidden = model.encode(features, people)                  # (1, N, E), (1, N, U[+C]), (1, state: model.py)
    # Every beam looks at the same image: tile once; only the hidden state is reordered per step.
    projected, keys, hidden = (tf.repeat(x, k, axis=0) for x in (projected, keys, hidden))
    advance = advance or (lambda *state: beam_step(model, *state))
    longest = tf.pow(tf.cast(max_length, tf.float32), length_alpha)
    scores = tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)                  # (K,): only beam 0 is live
    tokens = tf.fill([k], START)
    lengths = tf.zeros([k])                                                    # words + <end> so far
    history = tf.zeros([k, HISTORY], tf.int32)
    words_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)            # per step (K, 2): word, parent
    looks_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)          # per step (K, N + 1): attention, score
    for t in tf.range(max_length):
        tokens, parent, hidden, scores, lengths, history, attention = advance(
            tokens, hidden, projected, keys, scores, lengths, history, t)
        words_ta = words_ta.write(t, tf.stack([tokens, parent], 1))
        looks_ta = looks_ta.write(t, tf.concat([attention, scores[:, None]], 1))
        if _cannot_be_beaten(scores, lengths, _finished(tokens), longest, length_alpha):
            break
    best = tf.argmax(_normalised(scores, lengths, length_alpha), output_type=tf.int32)
    words, looks = words_ta.stack(), looks_ta.stack()                         # (T, K, 2), (T, K, N + 1)
    path = _backtrack(words[:, :, 1], best)                                    # (T, 2): [step, beam]
    looked = tf.gather_nd(looks, path)                                         # (T, N + 1)
    path_scores = looked[:, -1]                                                # (T,) log-prob so far
    word_probs = tf.exp(path_scores - tf.concat([[0.0], path_scores[:-1]], 0))
    return (tf.gather_nd(words[:, :, 0], path)[None], word_probs[None], looked[None, :, :-1],
            scores[best][None])


def _finished(tokens):
    """A beam is finished once its last word is <end> (or the <pad> that follows it)."""
    return (tokens == END) | (tokens == PAD)


def _backtrack(parents, last_beam):
    """parents (T, K): the beam each step's beam came from -> (T, 2) [step, beam] of one caption."""
    steps = tf.shape(parents)[0]
    beams = tf.TensorArray(tf.int32, size=steps)
    beam = last_beam
    for t in tf.range(steps - 1, -1, -1):
        beams = beams.write(t, beam)
        beam = parents[t, beam]
    return tf.stack([tf.range(steps), beams.stack()], axis=1)


def _normalised(scores, lengths, length_alpha):
    return scores / tf.pow(tf.maximum(lengths, 1.0), length_alpha)


def _cannot_be_beaten(scores, lengths, finished, longest, length_alpha):
    """True when no live beam can end above the best finished one (or none is live): a live beam's
    log-probability only falls, so its best possible normalised score is today's score / longest,
    longest = max_length ** alpha."""
    best_done = tf.reduce_max(tf.where(finished, _normalised(scores, lengths, length_alpha), NEG_INF))
    best_live = tf.reduce_max(tf.where(finished, NEG_INF, scores / longest))
    return best_done >= best_live


class Searches:
    """The three searches compiled once for one model; tensors in, tensors out. Each takes, last,
    `people` (B,): the probability that each image shows a person (people.py); None: none does."""

    def __init__(self, model, jit_compile: bool = False):
        feature_dim = model.config.feature_dim
        features = tf.TensorSpec([None, None, feature_dim], tf.float32)
        scalar_int, scalar_float = tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)
        people = tf.TensorSpec([None], tf.float32)
        compile_ = lambda fn, *spec: tf.function(fn, input_signature=[features, scalar_int, *spec, people],
                                                 jit_compile=jit_compile, reduce_retracing=True)
        self._greedy = compile_(lambda f, n, p: greedy_search(model, f, n, p))
        self._sample = compile_(lambda f, n, temp, top_k, seed, p: sample_search(model, f, n, temp, top_k, seed, p),
                                scalar_float, scalar_int, tf.TensorSpec([2], tf.int32))
        # XLA fuses a beam step's small ops (K rows of attention, GRU, top-k, reordering) into a
        # few kernels: ~10% faster beam-3 on a 2-core CPU. Traced once; XLA compiles it once per beam
        # size (it needs static shapes) and caches that, so nothing retraces per caption.
        self._beam_step = tf.function(lambda *state: beam_step(model, *state), jit_compile=True)
        self._beam = compile_(lambda f, n, k, alpha, p: beam_search(model, f, n, k, alpha, self._beam_step, p),
                              scalar_int, scalar_float)

    def greedy(self, features, max_length, people=None):
        return self._greedy(features, max_length, _people(features, people))

    def sample(self, features, max_length, temperature, top_k, seed, people=None):
        return self._sample(features, max_length, temperature, top_k, seed, _people(features, people))

    def beam(self, features, max_length, beam_size, length_alpha, people=None):
        return self._beam(features, max_length, beam_size, length_alpha, _people(features, people))

    def tracing_count(self) -> int:
        functions = (self._greedy, self._sample, self._beam, self._beam_step)
        return sum(fn.experimental_get_tracing_count() for fn in functions)


def _people(features, people):
    """(B,) float32 person probabilities, zeros where none are given."""
    rows = tf.shape(features)[0]
    return tf.zeros([rows]) if people is None else tf.reshape(tf.cast(people, tf.float32), [rows])
