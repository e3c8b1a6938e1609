"""Where each captioning request's time goes, for `make loadtest`: one JSON line per event to the
file that $CAPTIONER_TIMINGS names (unset, as when serving visitors: nothing is measured or kept).

A line: the event, its whole time in the server's function, and the model's account of it
(captioner.batching.Timing: decoding the image, waiting for a batch, the batch's model call and
its size). The time in the function outside those is the pictures (overlays, figure, GIF; on the
API, the JSON). Upload and queue times are Gradio's own (GRADIO_PROFILING=1), read by the load test.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
import time

_last = threading.local()     # the model's Timing of the request this thread works on
_write = threading.Lock()


def seen(captions):
    """Note the model's timing of a request's captions (-> the captions, unchanged)."""
    if captions and getattr(captions[0], "timing", None) is not None:
        _last.timing = captions[0].timing
    return captions


def timed(fn):
    """An event function whose time, and its model's account of it, go to $CAPTIONER_TIMINGS."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        path = os.environ.get("CAPTIONER_TIMINGS")
        if not path:
            return fn(*args, **kwargs)
        _last.timing = None
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(path, fn.__name__, time.perf_counter() - start, _last.timing)
    return wrapper


def _record(path: str, event: str, total_s: float, timing) -> None:
    line = {"event": event, "total_s": round(total_s, 6)}
    if timing is not None:
        line |= {name: round(value, 6) if isinstance(value, float) else value
                 for name, value in dataclasses.asdict(timing).items()}
    with _write, open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")
