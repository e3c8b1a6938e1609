"""Dynamic batching of model work: requests that arrive together share one model call.

Many visitors at once each ask for one caption; the model can caption several images in one call
for little more than the cost of one (the decoder loop's per-step overhead is shared). A
`MicroBatcher` stands in front of the model as TensorFlow Serving's and Triton's dynamic batchers
do, with a maximum batch size and a maximum wait, but the wait is only spent when it can pay:

- the model runs one batch at a time (it is not safe from several threads: this is the one limit
  on model work, whatever event asked for it), and requests that arrive meanwhile wait in order;
- when the model is free, the oldest waiting request leads: it takes every waiting request with
  the same key (options that can share a call), up to `max_batch` items, and runs them;
- it waits for more (at most `max_wait_s` after it arrived) only while other requests are known
  to be on their way (`on_its_way`: decoding their images), so a visitor who comes alone never
  waits: the model starts on a lone request at once.

Requests whose keys differ never share a call, a request with no key (None) is a function run in a
call of its own, and the oldest request always goes next, so no kind of request can starve another.

Pure Python threading: no web framework here (the web layer and the API both use it).
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable


@dataclass
class Timing:
    """Where one request's time went: decoding its image (set by the caller), waiting for its
    batch, then the batch's model call."""
    decode_s: float = 0.0
    wait_s: float = 0.0      # from submitting to its batch starting (the model busy, or gathering)
    model_s: float = 0.0     # its batch's model call (shared with the batch)
    batch: int = 1           # items in that call


@dataclass
class _Job:
    key: Hashable | None
    item: Any
    size: int                                   # items it brings to a batch (images)
    submitted: float = field(default_factory=time.perf_counter)
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    timing: Timing = field(default_factory=Timing)


class MicroBatcher:
    """`run(key, items) -> results` (one per item, in order) called for batches of submitted items
    with one key, one call at a time; an item submitted with key None is a function, called alone
    in its turn. Thread-safe; `submit` blocks until its item's result is in."""

    def __init__(self, run: Callable[[Hashable, list], list], max_batch: int, max_wait_s: float):
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be at least 1 and max_wait_s at least 0")
        self._run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
        self._ready = threading.Condition()
        self._pending: list[_Job] = []
        self._busy = False          # a batch is being gathered or run
        self._coming = 0            # requests on their way (on_its_way) that have not submitted yet
        self.batch_sizes: Counter = Counter()   # items per model call, since start

    @contextlib.contextmanager
    def on_its_way(self):
        """Around the work a request does before it submits (decoding its image): while any
        request is inside, a batch being gathered may wait for it (up to max_wait_s). Yields a
        function that submits as `submit` does and marks the request arrived in the same step."""
        arrived = []

        def submit(key, item, size: int = 1):
            arrived.append(True)
            return self.submit(key, item, size, _announced=True)
        with self._ready:
            self._coming += 1
        try:
            yield submit
        finally:
            if not arrived:                 # it failed before submitting (an unreadable image)
                with self._ready:
                    self._coming -= 1
                    self._ready.notify_all()

    def submit(self, key: Hashable | None, item, size: int = 1, _announced: bool = False) -> tuple[Any, Timing]:
        """Run `item` in a batch of items with the same key (None: `item()` alone) -> (its result,
        its Timing). The call's exception, if any, is raised to every request of that batch."""
        job = _Job(key, item, size)
        with self._ready:
            self._pending.append(job)
            self._coming -= _announced
            self._ready.notify_all()
            while not job.done:
                if self._busy:
                    self._ready.wait()
                else:
                    self._lead()
        if job.error is not None:
            raise job.error
        return job.result, job.timing

    def _lead(self) -> None:
        """Gather the next batch (the lock held, released while waiting and while the model runs),
        run it, hand each request its result."""
        self._busy = True
        try:
            batch = self._gather()
            self._ready.release()
            try:
                self._run_batch(batch)
            finally:
                self._ready.acquire()
        finally:
            self._busy = False
            self._ready.notify_all()

    def _gather(self) -> list[_Job]:
        """The oldest request and the waiting requests that share its key, up to max_batch items;
        waits (lock released) for requests on their way, until max_wait_s after the oldest came."""
        first = self._pending[0]
        deadline = first.submitted + self.max_wait_s
        while first.key is not None and self._coming > 0 and self._items(first.key) < self.max_batch:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            self._ready.wait(left)
        batch, items = [], 0
        for job in list(self._pending):
            if not batch or (first.key is not None and job.key == first.key and items + job.size <= self.max_batch):
                batch.append(job)
                items += job.size
                self._pending.remove(job)
        return batch

    def _items(self, key) -> int:
        return sum(job.size for job in self._pending if job.key == key)

    def _run_batch(self, batch: list[_Job]) -> None:
        """The model call for one batch (no lock held); every job gets its result or the error."""
        start = time.perf_counter()
        try:
            key = batch[0].key
            results = self._run(key, [job.item for job in batch]) if key is not None else [batch[0].item()]
            error = None
        except BaseException as failure:   # handed to every request of the batch, raised there
            results, error = [None] * len(batch), failure
        took, items = time.perf_counter() - start, sum(job.size for job in batch)
        self.batch_sizes[items] += 1
        for job, result in zip(batch, results):
            job.result, job.error, job.done = result, error, True
            job.timing = Timing(wait_s=start - job.submitted, model_s=took, batch=items)
