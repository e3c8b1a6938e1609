"""Dynamic batching (captioner/batching.py): requests made together share model calls, and each
gets exactly what it gets alone."""
import threading

import numpy as np
import pytest

from captioner import Captioner, litert
from captioner.assets import EXAMPLES
from captioner.batching import MicroBatcher

PATHS = sorted(EXAMPLES.glob("*.jpg"))


def held(batcher: MicroBatcher):
    """Keep the model busy with a request of its own until the returned event is set: requests
    made meanwhile wait, and go together once it is set."""
    release, started = threading.Event(), threading.Event()

    def hold():
        started.set()
        release.wait()
        return None
    thread = threading.Thread(target=batcher.submit, args=(None, hold))
    thread.start()
    started.wait()
    return release, thread


def wait_pending(batcher: MicroBatcher, count: int) -> None:
    """Until `count` requests wait (the condition is notified on every arrival)."""
    with batcher._ready:
        batcher._ready.wait_for(lambda: len(batcher._pending) >= count)


def together(batcher, calls):
    """Run `calls` (no-argument functions that submit) while the batcher is held, so they reach the
    model together -> their results, in order."""
    release, holder = held(batcher)
    results = [None] * len(calls)

    def run(i):
        results[i] = calls[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    wait_pending(batcher, len(calls))
    release.set()
    for thread in threads + [holder]:
        thread.join()
    return results


def plain_batcher(max_batch=4, calls=None):
    calls = [] if calls is None else calls

    def run(key, items):
        calls.append((key, list(items)))
        if "bad" in items:
            raise RuntimeError("the model failed")
        return [(key, item) for item in items]
    return MicroBatcher(run, max_batch, max_wait_s=0.0)


def test_requests_made_together_share_calls_by_key_in_order_up_to_the_limit():
    calls = []
    batcher = plain_batcher(max_batch=3, calls=calls)
    keys = ["a", "b", "a", "a", "a", "b"]
    results = together(batcher, [lambda k=k, i=i: batcher.submit(k, i)[0] for i, k in enumerate(keys)])
    assert results == [(k, i) for i, k in enumerate(keys)]
    # The oldest request leads: its key's requests (at most 3), then the next oldest's.
    assert sorted(len(items) for _, items in calls) == [1, 2, 3]
    assert all(len({keys[i] for i in items}) == 1 for _, items in calls)
    assert sorted(batcher.batch_sizes.elements()) == [1, 1, 2, 3]   # with the holder's own call


def test_a_failed_call_fails_its_batch_only():
    batcher = plain_batcher()

    def attempt(item):
        try:
            return batcher.submit("a" if item != "other" else "b", item)[0]
        except RuntimeError as error:
            return str(error)
    results = together(batcher, [lambda i=i: attempt(i) for i in ("ok", "bad", "other")])
    assert results == ["the model failed", "the model failed", ("b", "other")]
    assert batcher.submit("a", "later")[0] == ("a", "later")      # the batcher still serves


def test_a_request_that_fails_before_submitting_is_no_longer_waited_for():
    batcher = plain_batcher()
    with pytest.raises(ValueError):
        with batcher.on_its_way():
            raise ValueError("unreadable image")
    assert batcher._coming == 0
    with batcher.on_its_way() as submit:
        assert batcher._coming == 1
        assert submit("a", 1)[0] == ("a", 1)
    assert batcher._coming == 0


def test_the_limits_are_checked():
    with pytest.raises(ValueError):
        MicroBatcher(lambda key, items: items, max_batch=0, max_wait_s=0)


@pytest.fixture(scope="module", params=["litert", "tensorflow"])
def captioner(request):
    if request.param == "litert" and not litert.available():
        pytest.skip("ai-edge-litert is not installed")
    return Captioner.load(use_litert=request.param == "litert")


def test_batched_greedy_captions_equal_lone_ones(captioner):
    """Greedy on LiteRT (batched loops converted for fixed sizes, padded) and on TensorFlow (one
    loop over the batch): each visitor's words, probabilities and attention as alone."""
    lone = [captioner.caption(path) for path in PATHS]
    batched = together(captioner.batcher, [lambda p=p: captioner.caption(p) for p in PATHS])
    assert max(c.timing.batch for c in batched) > 1
    assert max(captioner.batcher.batch_sizes) == captioner.batching.max_batch   # as many as it takes
    for alone, together_ in zip(lone, batched):
        assert together_.words == alone.words and together_.cut == alone.cut
        assert np.abs(together_.probs - alone.probs).max() <= 1e-5
        assert np.abs(together_.attention - alone.attention).max() <= 1e-5
        assert together_.warning == alone.warning
    shorter = together(captioner.batcher, [lambda p=p: captioner.caption(p, max_length=3) for p in PATHS[:3]])
    assert [c.words for c in shorter] == [captioner.caption(p, max_length=3).words for p in PATHS[:3]]


def test_other_strategies_run_alone_and_give_what_they_give_alone(captioner):
    options = [dict(strategy="sample", seed=7, num_samples=2), dict(strategy="beam", beam_size=2),
               dict(strategy="sample", seed=7, temperature=0.5), dict(strategy="greedy")]
    lone = [[c.text for c in captioner.captions(PATHS[0], **o)] for o in options]
    batched = together(captioner.batcher, [lambda o=o: captioner.captions(PATHS[0], **o) for o in options])
    assert [[c.text for c in cs] for cs in batched] == lone
    assert [cs[0].timing.batch for cs in batched] == [1, 1, 1, 1]          # each in a call of its own
