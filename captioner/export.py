"""`python -m captioner export`: a TensorFlow SavedModel that captions encoded image bytes.

Its `serving_default` signature takes one encoded image (a scalar string tensor: JPEG, PNG, GIF
or BMP bytes) and returns the greedy caption, its words and probabilities, and the attention maps.
Decoding, resizing, encoding and the caption loop all run inside the graph: no Python needed.
Not in it: the person detectors (people.py: TFLite flatbuffers, which a SavedModel graph cannot run;
the loop gets no person probability, so it names people as the ImageNet head sees them) and the
setting cut (api.Captioner, after decoding).
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from .decoding import greedy_search
from .encoders import as_stored, decode_image_bytes
from .vocab import CONSONANT_SOUND, VOWEL_SOUND


class CaptionModule(tf.Module):
    def __init__(self, captioner):
        super().__init__(name="captioner")
        self.encoder = captioner.encoder          # tracked: the encoder's weights are saved
        self.model = captioner.checkpoint.model   # tracked: the decoder's weights are saved
        self.words = tf.constant(captioner.vocab.words)
        self.end_id = captioner.vocab.end_id
        self.max_length = captioner.config.max_length
        self.grid = captioner.config.grid_size

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes")])
    def serve(self, image_bytes):
        image = decode_image_bytes(image_bytes)
        features = as_stored(self.encoder.features(self.encoder.resize(image)[None]))
        ids, probs, attention, _ = greedy_search(self.model, features, tf.constant(self.max_length))
        ids, probs, attention = ids[0], probs[0], attention[0]
        length = tf.reduce_sum(tf.cast(tf.cumsum(tf.cast(ids == self.end_id, tf.int32)) == 0, tf.int32))  # before <end>
        words = _agree_articles(tf.gather(self.words, ids[:length]))
        return {"caption": tf.strings.reduce_join(words, separator=" "), "words": words,
                "probs": probs[:length],
                "attention": tf.reshape(attention[:length], [length, self.grid, self.grid])}


def _agree_articles(words):
    """vocab.agree_articles in the graph: (T,) strings -> (T,) strings."""
    after = tf.concat([words[1:], [""]], 0)
    vowel = tf.strings.regex_full_match(after, VOWEL_SOUND) & ~tf.strings.regex_full_match(after, CONSONANT_SOUND)
    is_article = lambda w: (w == "a") | (w == "an")
    article = is_article(words) & ~is_article(after) & (after != "")
    return tf.where(article, tf.where(vowel, "an", "a"), words)


def export_saved_model(captioner, out) -> Path:
    module = CaptionModule(captioner)
    out = Path(out)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out
