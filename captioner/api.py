"""The public API: `Captioner.load(...).caption(image)` -> `Caption`."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import quiet_stderr
from .assets import DEFAULT_CHECKPOINT
from .batching import MicroBatcher, Timing
from .checkpoint import WEIGHTS, Checkpoint, load_checkpoint
from .class_names import class_names
from .confidence import scaled_confidence
from .decoding import Searches
from .familiarity import UNFAMILIAR, content_warning
from .people import PERSON_SEEN, PERSON_SEEN_AT, PersonDetectors, PersonProbe
from .options import BATCHING, MAX_SEED, STRATEGIES, BatchingOptions, DecodingOptions
from .photo_figures import noun_steps
from .sandbox import POOL, load_untrusted_image
from .settings_seen import unseen_setting_cut
from .vocab import Vocabulary, agree_articles

COMPARE_SAMPLES = 3    # samples `compare` draws when the options ask for one only


@dataclass
class Caption:
    text: str
    words: list[str]
    probs: np.ndarray                  # (T,) probability of each word under the model
    attention: np.ndarray              # (T, grid, grid) where the model looked for each word
    image: object = field(repr=False)  # the RGB PIL image that was captioned
    log_prob: float = 0.0              # of the whole caption, <end> included
    strategy: str = "greedy"
    seed: int | None = None            # the seed a sampled caption can be repeated with
    cut: bool = False                  # stopped by the length limit before the model said <end>
    unfamiliar: bool | None = None     # the image is unlike the training data (None: not measured)
    warning: str | None = None         # why the caption is likely wrong (familiarity.py), if it is
    # Per word: for a noun, the ImageNet class the encoder sees in the cells that word's step attended
    # to and its probability ("cheetah", 0.83): why the model could say it; for "person" or "people"
    # in a photograph, (people.PERSON_SEEN, the person detectors' probability); None for other words.
    imagenet: list = field(default_factory=list)
    # Per word: for a noun, the probability the head gives the classes naming it over the whole
    # image (what the evidence gate reads); None for other words and where the head's opinion counts
    # for nothing (a rendered scene, or no head).
    evidence: list = field(default_factory=list)
    # Where this request's time went (image decoding, waiting for the model, its batch's model call,
    # the batch size): for the load test's report, never part of the result's value.
    timing: Timing | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"caption": self.text, "words": self.words,
                "probs": [round(float(p), 4) for p in self.probs],
                "log_prob": round(self.log_prob, 4), "strategy": self.strategy, "seed": self.seed,
                "cut": self.cut, "unlike_training_data": self.unfamiliar, "warning": self.warning,
                "imagenet": [None if seen is None else {"class": seen[0], "probability": round(seen[1], 4)}
                             for seen in self.imagenet]}


class Captioner:
    """A loaded checkpoint with its encoder; thread-safe: model calls run one at a time, and greedy
    requests made at the same moment from several threads share calls (batching.py)."""

    def __init__(self, checkpoint: Checkpoint, encoder_weights="default", source: str | None = None,
                 use_litert: bool = True, batching: BatchingOptions = BATCHING):
        from .encoders import build_encoder
        from .litert import litert_greedy
        self.checkpoint = checkpoint
        self.source = source or checkpoint.path.name   # how the page names it: never a server path
        self.config = checkpoint.config.model
        # The words captions are read in: the vocabulary, then the names only the copy path says.
        model = checkpoint.model
        self.vocab = checkpoint.vocab if model.copy is None else Vocabulary(model.copy.words)
        # The ImageNet head as numpy: which class each noun's step saw is read outside the model's calls.
        self._head = (model.imagenet_fc.kernel.numpy(), model.imagenet_fc.bias.numpy()) if model.uses_imagenet else None
        # The classes naming each output word (the evidence gate's pairs), where the copy path has them.
        self._named_by = {} if model.copy is None else _classes_by_word(model.copy)
        self.encoder = build_encoder(self.config.encoder, encoder_weights, self.config.image_size, litert=use_litert)
        if (self.encoder.grid_size, self.encoder.feature_dim) != (self.config.grid_size, self.config.feature_dim):
            raise ValueError(f"{checkpoint.path}: encoder {self.config.encoder} gives "
                             f"{self.encoder.grid_size}x{self.encoder.grid_size}x{self.encoder.feature_dim} "
                             f"features, the checkpoint expects {self.config.grid_size}x"
                             f"{self.config.grid_size}x{self.config.feature_dim}")
        self.searches = Searches(checkpoint.model)
        # Whether a photograph shows a person (people.py), where the checkpoint's gate reads it.
        self.person_probe = PersonProbe(self.config.person_face, self.config.person_body, self.config.person_bias)
        self._person_words = set() if model.copy is None else {int(i) for i in model.copy.person.numpy() if i >= 0}
        self._detectors = PersonDetectors(threads=2) if self.person_probe.fitted and model.gates_nouns \
            and model.copy.knows_person else None
        # Greedy search for one image on LiteRT: the page's and the API's most common call.
        self.greedy_on_litert = litert_greedy(checkpoint.model, checkpoint.path / WEIGHTS) if use_litert else None
        self.batching = batching
        self._greedy_batches: dict[int, object] = {}   # batch size -> its LiteRT loop, made on first use
        # The one way to the model: TF/Keras and LiteRT calls are not safe from several threads at once.
        self.batcher = MicroBatcher(self._run_batch, batching.max_batch, batching.max_wait_s)

    @classmethod
    def load(cls, path=None, encoder_weights="default", use_litert: bool = True) -> "Captioner":
        """A checkpoint directory, or `hf://owner/repo` (from the Hub), or None: $CAPTIONER_CHECKPOINT
        if set, else the default model shipped under assets/model."""
        path = path or os.environ.get("CAPTIONER_CHECKPOINT") or DEFAULT_CHECKPOINT
        source = "the shipped default model" if Path(path) == DEFAULT_CHECKPOINT else None
        if str(path).startswith("hf://"):
            from .hub import download
            source, path = str(path), download(str(path)[len("hf://"):])
        return cls(load_checkpoint(path), encoder_weights, source, use_litert)

    @classmethod
    def from_pretrained(cls, repo_id: str, **kwargs) -> "Captioner":
        return cls.load(f"hf://{repo_id}", **kwargs)

    def warm_up(self) -> "Captioner":
        """Ready this process to serve: numpy's BLAS on one thread (`hold_blas_to_one_thread`), an
        image decoding worker started, and every compiled function traced once, so the first real
        request is as fast as the rest."""
        hold_blas_to_one_thread()
        POOL.warm_up()
        blank = np.full((self.encoder.input_size, self.encoder.input_size, 3), 127, np.uint8)
        # First runs print native one-time notices that read like errors (oneDNN's "supports DT_HALF
        # only on platforms with AVX-512"); errors still raise. CAPTIONER_TF_LOGS=1 shows them.
        with quiet_stderr():
            for strategy in STRATEGIES:
                self.caption(blank, strategy=strategy, seed=0)
            self.captions(blank, strategy="sample", num_samples=2, seed=0)
            for size in self.batching.litert_sizes:   # each batched LiteRT loop (converted on first use)
                self.caption_batch([blank] * size)
        return self

    def features(self, images) -> tf.Tensor:
        """RGB images -> (B, N, C) features, rounded exactly as the training cache stores them."""
        return self.encoder.image_features(images)

    def _encode(self, pictures) -> tuple:
        """RGB pictures -> what the decoder reads of them: (B, N, C) features and (B,) people. Inside
        a model call (the detectors' interpreters are not thread-safe either)."""
        features = self.features(pictures)
        return features, self._people(pictures, features)

    def _people(self, images, features) -> np.ndarray:
        """RGB images and their (B, N, C) features -> (B,) the probability that each shows a person
        (people.py); zeros where the checkpoint does not read it, and for rendered scenes, whose
        nouns the gate leaves alone (photo_probe.py: the detectors' time is spent on photographs)."""
        people = np.zeros(len(images), np.float32)
        if self._detectors is None:
            return people
        probe = self.checkpoint.photo_probe
        photographs = np.ones(len(images), bool) if probe is None else \
            probe.photographs(np.asarray(features, np.float32).mean(1))
        if photographs.any():
            scores = self._detectors([image for image, shown in zip(images, photographs) if shown])
            people[photographs] = self.person_probe.probability(scores)
        return people

    # --- captions ----------------------------------------------------------------------------

    def caption(self, image, **options) -> Caption:
        """One image (path, bytes, file, PIL image or array) -> its caption; the likeliest one when
        several samples are drawn. Options: see `DecodingOptions` (strategy, temperature, ...)."""
        return self.captions(image, **options)[0]

    def captions(self, image, **options) -> list[Caption]:
        """One image -> `num_samples` sampled captions, most likely first (the same seed repeats
        them), or the one caption of greedy or beam search."""
        settings = DecodingOptions.parse(**options)
        copies = settings.num_samples if settings.strategy == "sample" else 1
        with self.batcher.on_its_way() as submit:   # a batch forming now may wait for this image
            start = time.perf_counter()
            picture = load_untrusted_image(image)
            decoded = time.perf_counter() - start
            captions = self._decode([picture], settings, copies, submit=submit)
        for caption in captions:
            caption.timing.decode_s = decoded
        return captions

    def caption_batch(self, images, **options) -> list[Caption]:
        """Several images -> one caption each, decoded as one batch (beam search: one by one)."""
        settings = DecodingOptions.parse(**options)
        return self._decode([load_untrusted_image(image) for image in images], settings)

    def compare(self, image, **options) -> list[Caption]:
        """One image, encoded once -> its greedy caption, its beam-search caption and several samples
        (`num_samples`, at least COMPARE_SAMPLES, most likely first), all decoded from the same
        features. Options as for `captions`; `strategy` is ignored."""
        settings = DecodingOptions.parse(**{**options, "strategy": "greedy"})
        picture = load_untrusted_image(image)
        encoded = self._alone(lambda: self._encode([picture]))[0]
        samples = max(settings.num_samples, COMPARE_SAMPLES)
        return [caption for strategy, copies in (("greedy", 1), ("beam", 1), ("sample", samples))
                for caption in self._decode([picture], dataclasses.replace(settings, strategy=strategy),
                                            copies, encoded)]

    def _decode(self, pictures, settings: DecodingOptions, copies: int = 1, encoded=None,
                submit=None) -> list[Caption]:
        """The one path from loaded pictures to captions; `copies` > 1 samples each picture that
        many times in one batch and returns them most likely first. `encoded` (features (B, N, C),
        people (B,)): the pictures already encoded (`compare` decodes one encoding several ways). Greedy requests
        with one length limit share model calls (`submit`: the batcher's, or on_its_way's)."""
        if not pictures:
            return []
        steps = settings.max_length or self.config.max_length
        seed = _pick_seed(settings.seed) if settings.strategy == "sample" else None
        if settings.strategy == "greedy" and copies == 1 and encoded is None:
            ((features, people), rows), timing = (submit or self.batcher.submit)(("greedy", steps), pictures,
                                                                                 len(pictures))
        else:
            ((features, people), rows), timing = self._alone(lambda: self._encode_and_search(
                pictures, settings, copies, steps, seed, encoded), submit)
        features = np.asarray(features)                # (B, N, C): read twice below, converted once
        warnings = self._warnings(pictures, features)  # pixels and statistics: not the model's, outside its calls
        captions = [self._caption(pictures[i // copies], *row, settings.strategy, seed, warnings[i // copies],
                                  features[i // copies], float(people[i // copies])) for i, row in enumerate(rows)]
        for caption in captions:
            caption.timing = dataclasses.replace(timing)
        return sorted(captions, key=lambda c: -c.log_prob) if copies > 1 else captions

    def _alone(self, work, submit=None):
        """Run `work()` in a model call of its own, in its turn -> (its result, Timing)."""
        return (submit or self.batcher.submit)(None, work)

    def _run_batch(self, key, items: list) -> list:
        """The batcher's model call for greedy requests sharing a length limit, key ("greedy", steps),
        items their picture lists -> per request ((features (B, N, C), people (B,)), rows)."""
        # Each request's pictures are encoded as they would be alone (the LiteRT encoder takes one
        # image a call anyway): only the decoder loop, where batching pays, is shared.
        encoded = [self._encode(pictures) for pictures in items]
        features = tf.concat([f for f, _ in encoded], 0) if len(encoded) > 1 else encoded[0][0]
        rows = self._greedy(features, key[1], np.concatenate([people for _, people in encoded]))
        starts = np.cumsum([0] + [len(pictures) for pictures in items])
        return [(request, rows[a:b]) for request, a, b in zip(encoded, starts, starts[1:])]

    def _encode_and_search(self, pictures, settings, copies, steps, seed, encoded=None) -> tuple:
        encoded = self._encode(pictures) if encoded is None else encoded
        features, people = encoded
        features = tf.repeat(features, copies, axis=0) if copies > 1 else features   # (B * copies, N, C)
        return encoded, self._search(features, settings, steps, seed, np.repeat(people, copies))

    def _greedy(self, features, steps: int, people) -> list[tuple]:
        """Greedy rows for (B, N, C) features and (B,) people: on LiteRT where it is, in the smallest
        converted batch that holds them (padded), chunks of the largest where B is larger; else
        TensorFlow's loop."""
        if self.greedy_on_litert is None:
            return list(zip(*(x.numpy() for x in self.searches.greedy(features, tf.constant(steps, tf.int32), people))))
        rows, largest = [], max((1, *self.batching.litert_sizes))
        for start in range(0, len(features), largest):
            chunk, seen = features[start:start + largest], people[start:start + largest]
            size = min(s for s in (1, *self.batching.litert_sizes) if s >= len(chunk))
            loop = self._litert_batch(size)
            rows += list(zip(*loop(chunk, steps, seen))) if loop is not None else \
                [row for i in range(len(chunk)) for row in zip(*self.greedy_on_litert(chunk[i:i + 1], steps, seen[i:i + 1]))]
        return rows

    def _litert_batch(self, size: int):
        """The greedy loop converted for `size` images (made and cached on first use); None where the
        conversion failed (each image then takes the one-image loop)."""
        if size == 1:
            return self.greedy_on_litert
        if size not in self._greedy_batches:
            from .litert import litert_greedy
            self._greedy_batches[size] = litert_greedy(self.checkpoint.model, self.checkpoint.path / WEIGHTS,
                                                       batch=size)
        return self._greedy_batches[size]

    def _search(self, features, settings: DecodingOptions, steps: int, seed, people) -> list[tuple]:
        """(B, N, C) features, (B,) people -> per image: (ids (T,), probs (T,), attention (T, N), log_prob)."""
        if settings.strategy == "greedy":
            return self._greedy(features, steps, people)
        steps = tf.constant(steps, tf.int32)
        if settings.strategy == "beam":   # its beams are the batch: one image at a time
            beam_size, alpha = tf.constant(settings.beam_size), tf.constant(settings.length_alpha, tf.float32)
            return [tuple(x.numpy()[0] for x in self.searches.beam(features[i:i + 1], steps, beam_size, alpha,
                                                                   people[i:i + 1]))
                    for i in range(len(features))]
        outputs = self.searches.sample(features, steps, tf.constant(settings.temperature, tf.float32),
                                       tf.constant(settings.top_k), tf.constant([seed, 0], tf.int32), people)
        return list(zip(*(x.numpy() for x in outputs)))

    def _classes_behind(self, features, attention) -> list:
        """The top ImageNet class of the cells each step attended to, and its probability (the head is
        linear: the head on the attended mix of cells, as the step used it). numpy, outside the model's
        calls, and only for the steps asked (a caption's nouns): every step's would cost more than the
        decoding. features (N, C), attention (S, N) -> S (class, probability)."""
        if self._head is None or not len(attention):
            return [None] * len(attention)
        kernel, bias = self._head
        logits = (attention @ features) @ kernel + bias                           # (S, K)
        classes = np.exp(logits - logits.max(-1, keepdims=True))
        classes /= classes.sum(-1, keepdims=True)
        return [(class_names()[k].imagenet, float(classes[s, k])) for s, k in enumerate(classes.argmax(-1))]

    def _setting_cut(self, words: list[str], whole) -> int | None:
        """Where a photograph's caption ends because the head does not see the setting it names
        (`setting_evidence`, settings_seen.py); None: it keeps every word. whole (K,): the head's
        classes over the whole photograph, None for a rendered scene."""
        classes, threshold = self.checkpoint.setting_classes, self.config.setting_evidence
        if not classes or threshold <= 0 or whole is None:
            return None
        return unseen_setting_cut(words, whole, classes, threshold)

    def _photograph_classes(self, features):
        """(N, C) features -> the head's (K,) class probabilities over the whole image where it is a
        photograph (photo_probe.py: the head's opinion of a rendered scene means nothing), else None."""
        if self._head is None:
            return None
        probe = self.checkpoint.photo_probe
        if probe is not None and not probe.photographs(np.asarray(features, np.float32).mean(0)[None])[0]:
            return None
        return self.whole_image_classes(np.asarray(features)[None])[0]

    def whole_image_classes(self, features) -> np.ndarray:
        """(B, N, C) features -> (B, K) the encoder's ImageNet head on the mean-pooled grid, as the
        model's own encode reads it."""
        kernel, bias = self._head
        logits = np.asarray(features, np.float32).mean(1) @ kernel + bias
        exp = np.exp(logits - logits.max(-1, keepdims=True))
        return exp / exp.sum(-1, keepdims=True)

    def _warnings(self, pictures, features) -> list:
        """Per image: why its caption is likely wrong (nothing in it, or unlike the training data:
        familiarity.py), None if nothing says so; False where the checkpoint cannot measure it."""
        stats = self.checkpoint.familiarity
        far = stats.unfamiliar(np.asarray(features)) if stats is not None else [None] * len(pictures)
        return [content_warning(picture) or (UNFAMILIAR if flag else flag) for picture, flag in zip(pictures, far)]

    def _caption(self, picture, ids, probs, attention, log_prob, strategy, seed, warning=None, features=None,
                 person: float = 0.0) -> Caption:
        words = agree_articles(self.vocab.decode(ids))
        whole = None if features is None else self._photograph_classes(features)   # (K,), a photograph's
        words = words[:self._setting_cut(words, whole)]
        nouns = sorted({step for step, _ in noun_steps(words)})
        imagenet, evidence = [None] * len(words), [None] * len(words)
        if features is not None:
            for step, seen in zip(nouns, self._classes_behind(features, np.asarray(attention, np.float32)[nouns])):
                imagenet[step] = seen
        for step in nouns if whole is not None else ():
            # As the gate reads it (model.CopyPath.seen): a person seen at even odds or more is one
            # class more, and the head's classes share what is left.
            seen = person if person >= PERSON_SEEN_AT and self._detectors is not None else 0.0
            evidence[step] = float(whole[self._named_by.get(int(ids[step]), [])].sum()) * (1.0 - seen)
            if int(ids[step]) in self._person_words and seen:
                evidence[step] += seen
                imagenet[step] = (PERSON_SEEN, seen)
        grid = self.config.grid_size
        return Caption(text=" ".join(words), words=words, probs=self._shown(set(nouns), probs[:len(words)], evidence),
                       attention=np.asarray(attention[:len(words)], np.float32).reshape(len(words), grid, grid),
                       image=picture, log_prob=float(log_prob), strategy=strategy, seed=seed,
                       cut=Vocabulary.end_id not in np.asarray(ids).tolist(),
                       unfamiliar=None if warning is None else bool(warning), warning=warning or None,
                       imagenet=imagenet, evidence=evidence)

    def _shown(self, nouns: set[int], probs, evidence: list) -> np.ndarray:
        """The per-word confidences a caption shows: the decoder's probabilities, with the nouns' (at
        the word indices `nouns`) calibrated (ModelConfig.noun_confidence_*) where the checkpoint
        was; a fit that reads the head's evidence applies only where there is some (photographs)."""
        shown = np.array(probs, np.float32)
        c = self.config
        slope, bias, reads = c.noun_confidence_slope, c.noun_confidence_bias, c.noun_confidence_evidence
        if (slope, bias, reads) != (1.0, 0.0, 0.0):
            for step in nouns:
                if not reads or evidence[step] is not None:
                    shown[step] = scaled_confidence(shown[step], slope, bias, evidence[step], reads)
        return shown


def hold_blas_to_one_thread() -> None:
    """numpy's BLAS on one thread for the rest of the process. A serving process's numpy work is
    small matrix products after each model call (the class behind each noun, the whole-image
    classes, the photograph probe, the familiarity distance), and OpenBLAS's idle threads spin for a
    while after each call, on the cores the next LiteRT call needs: on 2 cores that took the
    end-to-end time from 22 to 35 ms (docs/benchmarks.md). Process-wide, never restored: OpenBLAS has
    one pool for the process, and requests finish in many threads at once, so a limit each request
    set and restored would be undone by another's."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=1, user_api="blas")


def _classes_by_word(copy) -> dict[int, np.ndarray]:
    """{output word id: the classes naming it} from the copy path's (class, word) pairs."""
    classes, words = copy.evidence_class.numpy(), copy.evidence_word.numpy()
    order = np.argsort(words, kind="stable")
    ids, starts = np.unique(words[order], return_index=True)
    return {int(w): group for w, group in zip(ids, np.split(classes[order], starts[1:]))}


def _pick_seed(seed) -> int:
    """The seed to report: the caller's, or a fresh random one (so any sample can be repeated)."""
    return int(np.random.SeedSequence().entropy % MAX_SEED) if seed is None else int(seed)
