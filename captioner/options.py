"""Decoding options: every knob of caption decoding, its default and its limits, defined once.

The API (`Captioner.caption(image, **options)`), the CLI flags, the page's controls and the HTTP
endpoints are all built from `DecodingOptions`, so a new knob touches this file only.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .config import LIMITS
from .images import InputError

STRATEGIES = ("greedy", "sample", "beam")
STRATEGY_NAMES = {"greedy": "Greedy", "sample": "Sampling", "beam": "Beam search"}
MAX_SEED = 2 ** 31 - 1


@dataclass(frozen=True)
class BatchingOptions:
    """How visitors' requests share model calls (batching.MicroBatcher; measured in
    docs/benchmarks.md, "Serving a crowd"). Only greedy captions with the same length limit share
    a call; every other request runs alone, in its turn."""
    max_batch: int = 8            # images in one model call: the LiteRT greedy loop's largest batch
    max_wait_s: float = 0.002     # a batch waits this long at most for requests decoding their
                                  # image (never for a visitor who comes alone)
    # The batch sizes the greedy loop is converted to LiteRT for (batch 1 is litert_greedy's own):
    # a batch of 2-4 runs padded to 4, of 5-8 padded to 8 (a padded row costs less than a call).
    litert_sizes: tuple[int, ...] = (4, 8)


BATCHING = BatchingOptions()


def knob(default, low=None, high=None, *, label: str, help: str, step=None, only: str | None = None,
         choices: tuple = ()):
    """A dataclass field with what a control needs: its limits, label, help and the strategy it
    applies to (None: every strategy)."""
    return field(default=default, metadata=dict(low=low, high=high, label=label, help=help, step=step,
                                                only=only, choices=choices))


@dataclass(frozen=True)
class DecodingOptions:
    strategy: str = knob("greedy", label="Decoding", choices=STRATEGIES,
                         help="greedy: the likeliest word each step; sample: drawn at random; beam: beam search")
    temperature: float = knob(1.0, 0.1, 2.0, step=0.05, only="sample", label="Temperature",
                              help="below 1: safer words; above 1: more surprising ones")
    top_k: int = knob(0, 0, 100, step=1, only="sample", label="Top-k (0: all words)",
                      help="sample from the k likeliest words (0: all)")
    beam_size: int = knob(3, 1, 10, step=1, only="beam", label="Beam size", help="beams kept each step")
    seed: int | None = knob(None, 0, MAX_SEED, only="sample", label="Seed (empty: random)",
                            help="makes sampling repeatable (empty: a new random seed, reported)")
    num_samples: int = knob(1, 1, 10, step=1, only="sample", label="Number of samples",
                            help="samples drawn at once, most likely first")
    max_length: int | None = knob(None, *LIMITS["max_length"], step=1, label="Max caption length (words)",
                                  help="longest caption, in words (the API's default: the model's own)")
    length_alpha: float = knob(0.7, 0.0, 2.0, step=0.05, only="beam", label="Length normalisation",
                               help="beam search ranks captions by log-probability divided by length to this "
                                    "power (0: no normalisation, longer captions lose)")

    @classmethod
    def parse(cls, **values) -> "DecodingOptions":
        """Options as a browser, an API client or a caller sent them (strings, floats for ints,
        empty boxes) -> checked options; anything out of its limits is an InputError naming it."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown decoding options: {', '.join(sorted(unknown))}")
        return cls(**{f.name: _parse(f, values[f.name]) for f in dataclasses.fields(cls) if f.name in values})

    @classmethod
    def knobs(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _parse(spec: dataclasses.Field, value):
    meta = spec.metadata
    label = meta["label"].split(" (")[0]                  # "Seed (empty: random)" -> "Seed must be ..."
    if _empty(value):
        if spec.default is None:
            return None
        if isinstance(value, float):                  # NaN where a number is needed
            raise InputError(f"{label} must be a number")
        return spec.default
    if meta["choices"]:
        if value not in meta["choices"]:
            raise InputError(f"Unknown {label.lower()} {str(value)[:40]!r}: use {', '.join(meta['choices'])}")
        return value
    number = _number(value, label)
    if isinstance(spec.default, float):
        parsed = number
    elif not float(number).is_integer():
        raise InputError(f"{label} must be a whole number, not {number:g}")
    else:
        parsed = int(number)
    if not meta["low"] <= parsed <= meta["high"]:
        raise InputError(f"{label} must be between {_bound(meta['low'])} and {_bound(meta['high'])}")
    return parsed


def _bound(value) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"   # 2,147,483,647, not 2.14748e+09


def _empty(value) -> bool:
    """None, "" and NaN mean "not set" (an emptied number box sends any of them)."""
    return value is None or (isinstance(value, str) and not value.strip()) or \
        (isinstance(value, float) and math.isnan(value))


def _number(value, label: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{label} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{label} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{label} must be a finite number")
    return number


def visibility(strategy: str) -> dict[str, bool]:
    """Which knobs apply to a strategy (the page shows only those)."""
    return {f.name: f.metadata["only"] in (None, strategy) for f in DecodingOptions.knobs() if f.name != "strategy"}
