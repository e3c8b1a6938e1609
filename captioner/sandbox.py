"""Image files from visitors are decoded in worker processes, each with a CPU-time and a memory budget.

Pillow's parsers have quadratic corners a small file can reach (a GIF comment in 1-byte sub-blocks,
BMP run-length rows 40 million pixels wide, EXIF tags that all point at one 9 MB blob); there will
be more. `captioner.images` refuses what it can recognise, and everything it reads runs here, where
any parser bug costs at most the budget, never the server:

    server thread ── bytes ──> worker (nice, RLIMIT_AS, a CPU-time alarm) ── RGB pixels ──> server

A worker decodes one image at a time and stays for the next (about 150 ms to start one). A worker
that runs out of CPU time is killed by the kernel (SIGPROF's default action: no Python handler
needs to get a turn inside a C loop); one that runs out of memory answers with a MemoryError and
leaves. Either way the request gets a message, and a fresh worker takes its place.
"""
from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

from .images import MAX_PIXELS, InputError, load_image, read_encoded

CPU_BUDGET_S = 1.5                 # of CPU time to decode one image
MEMORY_BUDGET = 480 * 2 ** 20      # address space a worker may add to decode one image (its whole
                                   # address space, and so its memory, stays under 600 MB)
WALL_DEADLINE_S = 10.0             # a worker's answer, at the latest (it is niced: others go first)
MAX_WORKERS = 6                    # decodes at once; more wait for a worker
NICENESS = 10                      # the model's own work goes first, but a busy CPU (a browser, a
                                   # crowd) must not starve a visitor's decode (docs/benchmarks.md)
_REQUEST = struct.Struct("<QQ")    # data length, max pixels
_REPLY = struct.Struct("<BIIQ")    # status, width, height, payload length
OK, REFUSED, OUT_OF_MEMORY = 0, 1, 2
TOO_SLOW = (f"The image takes more than {CPU_BUDGET_S:g} s of CPU time to decode (a damaged or "
            "hostile file?); it was refused")
TOO_BIG = (f"The image needs more than {MEMORY_BUDGET // 2 ** 20} MB of memory to decode (a damaged "
           "or hostile file?); it was refused")
CRASHED = "The image decoder failed on this file ({}); it was refused"


def load_untrusted_image(source, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """As `images.load_image`, but a file, bytes or a stream is parsed in a worker process within
    the budgets above. PIL images and arrays are already decoded: they are converted here."""
    if isinstance(source, (bytes, bytearray, memoryview, str, Path)) or hasattr(source, "read"):
        return POOL.decode(read_encoded(source), max_pixels)
    return load_image(source, max_pixels=max_pixels)


class _Worker:
    """One worker process and its pipes."""

    def __init__(self):
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
                   OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.process = subprocess.Popen([sys.executable, "-m", "captioner.sandbox"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        try:
            started = _read(self.process.stdout, 1, time.monotonic() + 30) == b"+"
        except (OSError, ValueError, TimeoutError):
            started = False
        if not started:
            self.kill()
            raise RuntimeError("the image decoding worker did not start")

    def decode(self, data: bytes, max_pixels: int) -> Image.Image:
        """-> the RGB image; InputError for a refusal; _Gone if the worker must be replaced."""
        deadline = time.monotonic() + WALL_DEADLINE_S
        try:
            self.process.stdin.write(_REQUEST.pack(len(data), max_pixels) + data)
            self.process.stdin.flush()
            status, width, height, size = _REPLY.unpack(_read(self.process.stdout, _REPLY.size, deadline))
            payload = _read(self.process.stdout, size, deadline)
        except (OSError, ValueError, struct.error, TimeoutError) as error:
            raise _Gone(self._cause(error)) from None
        if status == OK:
            return Image.frombytes("RGB", (width, height), payload)
        if status == OUT_OF_MEMORY:
            raise _Gone(TOO_BIG)
        raise InputError(payload.decode("utf-8", "replace"))

    def _cause(self, error) -> str:
        """Why the worker stopped answering: the kernel's CPU alarm, the deadline or a crash."""
        self.kill()
        code = self.process.returncode
        if code == -signal.SIGPROF:
            return TOO_SLOW
        if isinstance(error, TimeoutError):
            return f"The image took more than {WALL_DEADLINE_S:g} s to decode; it was refused"
        return CRASHED.format(signal.Signals(-code).name if code and code < 0 else f"exit {code}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class _Gone(Exception):
    """The worker answered no more (killed at its budget, or crashed): refuse, and replace it."""


class DecoderPool:
    """Up to `size` workers, started when first needed and kept for the next image; a request that
    finds them all busy waits for one."""

    def __init__(self, size: int = MAX_WORKERS):
        self.size, self.idle, self.started = size, [], 0
        self.ready = threading.Condition()

    def decode(self, data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
        worker = self._take()
        try:
            image = worker.decode(data, max_pixels)
        except _Gone as gone:
            self._drop(worker)
            raise InputError(str(gone)) from None
        except BaseException:
            self._give(worker)
            raise
        self._give(worker)
        return image

    def warm_up(self) -> "DecoderPool":
        """Start one worker now, so the first image does not wait for it."""
        self._give(self._take())
        return self

    def close(self) -> None:
        with self.ready:
            idle, self.idle = self.idle, []
            self.started -= len(idle)
        for worker in idle:
            worker.kill()

    def _take(self) -> _Worker:
        with self.ready:
            while not self.idle and self.started >= self.size:
                self.ready.wait()
            if self.idle:
                return self.idle.pop()
            self.started += 1
        try:
            return _Worker()
        except BaseException:
            self._drop(None)
            raise

    def _give(self, worker: _Worker) -> None:
        with self.ready:
            self.idle.append(worker)
            self.ready.notify()

    def _drop(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
        with self.ready:
            self.started -= 1
            self.ready.notify()


def _read(pipe, size: int, deadline: float) -> bytes:
    """Exactly `size` bytes from a pipe by `deadline` (TimeoutError), or EOFError-like ValueError."""
    chunks, left, fd = [], size, pipe.fileno()
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(fd, min(left, 2 ** 22))
        if not chunk:
            raise ValueError("the worker closed its pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


POOL = DecoderPool()


# --- the worker's side ----------------------------------------------------------------------------

def _serve(requests, replies) -> None:
    """Decode images until the server closes the pipe; leave after a MemoryError (the heap may be
    in any state). The CPU alarm is armed for the decode only, so idle time and pipes cost nothing."""
    import resource
    os.nice(NICENESS)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + MEMORY_BUDGET
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    replies.write(b"+")
    replies.flush()
    while header := requests.read(_REQUEST.size):
        size, max_pixels = _REQUEST.unpack(header)
        data = requests.read(size)
        signal.setitimer(signal.ITIMER_PROF, CPU_BUDGET_S)
        try:
            image = load_image(data, max_pixels=max_pixels)
            reply = (OK, *image.size, image.tobytes())
        except InputError as refusal:
            reply = (REFUSED, 0, 0, str(refusal).encode())
        except MemoryError:
            reply = (OUT_OF_MEMORY, 0, 0, b"")
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        status, width, height, payload = reply
        replies.write(_REPLY.pack(status, width, height, len(payload)) + payload)
        replies.flush()
        if status == OUT_OF_MEMORY:
            return


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
