"""What the web server adds around Gradio so that a public client cannot use it against us.

- File fields take uploads only. Gradio itself downloads any URL a client puts in a file field's
  `path` (with `safehttpx`: no size cap, no deadline, gzip decoded, carrier-grade NAT and 6to4
  counted public), before any of our code runs. `GuardedBlocks` refuses such a field first, so
  URLs only ever reach our own fetcher (captioner.web.urls) through the URL box and /caption_url.
- Every refusal carries a message that names the field and shows no server path.
- Any event's unexpected failure reaches the client as one sentence, and the log as one line.
- Every limit the server keeps is defined here, and `launch_options` hands them to the HTTP layer
  (captioner/web/middleware.py): uploads capped per request, per client over `KEEP_FILES_S` and on
  disk; Gradio's routes that fetch for a client or that the app does not use closed; idle live
  streams closed. Gradio deletes what was uploaded or made for a visitor after `KEEP_FILES_S`,
  and `sweep_uploads` the folders it leaves.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import threading
import time
from pathlib import Path

import gradio as gr
from gradio_client import utils as client_utils
from starlette.middleware import Middleware

from ..options import BATCHING
from .middleware import IdleStreams, RouteGuard, UploadLimits, upload_folder

MAX_FILE_SIZE = "10mb"                 # one uploaded file
MAX_UPLOAD_FILES = 1                   # files in one upload request (the page and the API send one)
MAX_UPLOAD_BYTES = 10 * 2 ** 20 + 64 * 2 ** 10   # one request: a 10 MB file and its multipart framing
MAX_BODY_BYTES = 14 * 2 ** 20          # any other request: a 10 MB image inline, base64, and its JSON
KEEP_FILES_S = 600                     # uploads and made files are deleted this long after creation
CLIENT_UPLOAD_BYTES = 200 * 2 ** 20    # what one client may upload within KEEP_FILES_S (20 full files)
DISK_UPLOAD_BYTES = 2 * 2 ** 30        # what the upload folder may hold in all
SESSIONS = 2000                        # sessions whose state Gradio keeps (its default: 10,000)
M_MMAP_THRESHOLD = -3                  # glibc's mallopt parameter (malloc.h)
STREAM_IDLE_S = 5                      # a live stream that sends no frame this long is closed
# Requests worked on at once, every event together (the live camera's streams apart). Model work
# itself has one limit of its own, whatever the event (Captioner.batcher: one call at a time, the
# oldest request first); this many requests can be decoding their images or waiting for the model
# meanwhile, twice a batch, so that the next batch gathers while one runs. Image decoding has its
# own workers (sandbox.MAX_WORKERS), so four hostile files never keep a fifth visitor waiting.
WORK_LIMIT = 2 * BATCHING.max_batch
DELETE_CACHE = (60, KEEP_FILES_S)      # Gradio's (how often to look, how old to delete)
UPLOAD_ONLY = ("{field} takes an uploaded file only. To caption an image on the web, give its URL "
               "in the URL box (API: /caption_url), which the server fetches safely.")
NOT_UPLOADED = ("{field}: the file must be uploaded to this server first (the page does this; with "
                "gradio_client, pass handle_file(path)).")
FAILED = "This request could not be processed; check its parameters against the API page"
log = logging.getLogger("captioner.web.serving")


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose events refuse remote or server-side files, name any input they refuse and
    answer an unexpected failure with one sentence (FAILED) instead of Gradio's empty error."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        if len(inputs) < len(block_fn.inputs):
            names = ", ".join(_name(block) for block in block_fn.inputs)
            raise gr.Error(f"Expected {len(block_fn.inputs)} inputs ({names}), got {len(inputs)}",
                           print_exception=False)
        for block, value in zip(block_fn.inputs, inputs):
            for path in _file_paths(value, block):
                if client_utils.is_http_url_like(path) or "://" in path:
                    raise gr.Error(UPLOAD_ONLY.format(field=_name(block)), print_exception=False)
                if not explicit_call and not _uploaded(path):
                    raise gr.Error(NOT_UPLOADED.format(field=_name(block)), print_exception=False)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Exception as error:
            raise gr.Error(_refusal(block_fn.inputs, inputs, error), print_exception=False) from None

    async def process_api(self, block_fn, inputs, *args, **kwargs):
        try:
            return await super().process_api(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:     # a private event called with what the page never sends
            name = getattr(block_fn, "name", None) or getattr(block_fn, "api_name", None) or block_fn
            log.warning("event %s refused: %s: %s", name, type(error).__name__, str(error)[:200])
            raise gr.Error(FAILED, print_exception=False) from None


def _file_paths(value, block=None) -> list[str]:
    """Where every file in one input value lies: the `path` (else `url`) of anything shaped like a
    Gradio file object, a dict with either key, with or without `meta` (Gradio reads both), at
    any depth; and a bare string given to a file field. A `data:` URL is no place but the file
    itself, inline (the camera sends its frames so; the request's size is capped): left out."""
    if isinstance(value, str):
        return [value] if _takes_files(block) and not _inline(value) else []
    if isinstance(value, dict):
        location = value.get("path") or value.get("url")
        found = [str(location)] if location and not _inline(str(location)) else []
        return found + [path for inner in value.values() for path in _file_paths(inner)]
    if isinstance(value, (list, tuple)):
        return [path for inner in value for path in _file_paths(inner)]
    return []


def _inline(location: str) -> bool:
    return location[:5].lower() == "data:"


def _takes_files(block) -> bool:
    """Whether a field's value is a file (its data model has a `path`: FileData, ImageData, ...)."""
    return "path" in getattr(getattr(block, "data_model", None), "model_fields", {})


def _uploaded(path: str) -> bool:
    """Whether a path lies in Gradio's upload folder (resolved, so `..` and links cannot leave it)."""
    try:
        return Path(path).resolve().is_relative_to(upload_folder().resolve())
    except (OSError, ValueError):
        return False


def _name(block) -> str:
    return f'"{block.label}"' if getattr(block, "label", None) else f"The {block.get_block_name()} field"


def _refusal(blocks, inputs, error: Exception) -> str:
    """A message naming the input Gradio could not read, found by reading each again on its own."""
    for block, value in zip(blocks, inputs):
        if not _file_paths(value, block):
            try:
                block.preprocess(value)
            except gr.Error as refusal:
                return f"{_name(block)}: {refusal.message}"
            except Exception:
                return f"{_name(block)}: {str(value)[:40]!r} is not a valid value"
    if isinstance(error, gr.Error):
        return error.message
    return "One of the inputs could not be read; check the parameter types (see the API page)"


def sweep_uploads(older_than_s: float = 60) -> int:
    """Remove the empty folders Gradio leaves in its upload folder when it deletes old files (one per
    upload); -> how many. Folders younger than `older_than_s` are left for the file on its way in."""
    removed, cutoff = 0, time.time() - older_than_s
    for root, folders, files in os.walk(upload_folder(), topdown=False):
        for name in folders:
            path = os.path.join(root, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.rmdir(path)               # refuses a folder that is not empty
                    removed += 1
            except OSError:
                pass
    return removed


def keep_big_buffers_out_of_the_heap(threshold: int = 2 ** 20) -> bool:
    """glibc raises its mmap threshold to the size of any large block freed (up to 32 MB); after
    that, image buffers (12 MB for 2048x2048) come from the heap arenas of whichever thread made
    them and stay there once freed: the server grew 1.8 MB per session, and never gave it back. A
    fixed threshold keeps every block over `threshold` in a mapping of its own, returned to the
    system when freed (0.46 MB per session, most of it Gradio's own session state). -> whether set
    (False where the C library is not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1
    except (OSError, AttributeError, TypeError):
        return False


def start_sweeper(every_s: float = 60) -> threading.Thread:
    """Run sweep_uploads every `every_s` in a daemon thread."""
    def sweep_forever():
        while True:
            time.sleep(every_s)
            try:
                sweep_uploads()
            except Exception:
                log.exception("sweeping the upload folder")
    sweeper = threading.Thread(target=sweep_forever, name="captioner-sweeper", daemon=True)
    sweeper.start()
    return sweeper


def free_port() -> int:
    """A loopback port free now (the benchmarks' and tests' own servers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_options(server_name: str) -> dict:
    """What `launch()` needs for the limits above, for a server listening on `server_name`."""
    guard = Middleware(RouteGuard, failed=FAILED, body_bytes=MAX_BODY_BYTES, loopback_only=server_name in ("127.0.0.1", "localhost", "::1"),
                       trust_proxy=bool(os.environ.get("SPACE_ID") or os.environ.get("CAPTIONER_TRUST_PROXY")))
    uploads = Middleware(UploadLimits, files=MAX_UPLOAD_FILES, request_bytes=MAX_UPLOAD_BYTES,
                         client_bytes=CLIENT_UPLOAD_BYTES, disk_bytes=DISK_UPLOAD_BYTES, window_s=KEEP_FILES_S)
    return {"max_file_size": MAX_FILE_SIZE, "enable_monitoring": False, "state_session_capacity": SESSIONS,
            "app_kwargs": {"middleware": [guard, uploads, Middleware(IdleStreams, idle_s=STREAM_IDLE_S)]}}
