"""What the web server adds around Gradio so that a public client cannot use it against us.

- File fields take uploads only. Gradio itself downloads any URL a client puts in a file field's
  `path` (with `safehttpx`: no size cap, no deadline, gzip decoded, carrier-grade NAT and 6to4
  counted public), before any of our code runs. `GuardedBlocks` refuses such a field first, so
  URLs only ever reach our own fetcher (captioner.urls) through the URL box and /caption_url.
- Every refusal carries a message that names the field and shows no server path.
- Uploads are capped per request (count and total bytes), per client over `KEEP_FILES_S` and in
  all on disk (`UploadLimits`); Gradio deletes what was uploaded or made for a visitor after
  `KEEP_FILES_S`, and `sweep_uploads` the folders it leaves.
- Gradio's routes that fetch for a client (`/file=URL`, `/proxy=`), that the app does not use
  (`/process_recording`, run history, monitoring, ...) or that tell more than a visitor needs
  are closed (`RouteGuard`), and a request Gradio cannot read gets a short answer, never a bare 500.
- Any event's unexpected failure reaches the client as one sentence, and the log as one line.
"""
from __future__ import annotations

import asyncio
import collections
import json
import math
import logging
import os
import re
import threading
import time
from pathlib import Path

import gradio as gr
from gradio_client import utils as client_utils
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.middleware import Middleware

from .sandbox import MAX_WORKERS

MAX_FILE_SIZE = "10mb"                 # one uploaded file
MAX_UPLOAD_FILES = 1                   # files in one upload request (the page and the API send one)
MAX_UPLOAD_BYTES = 10 * 2 ** 20 + 64 * 2 ** 10   # one request: a 10 MB file and its multipart framing
KEEP_FILES_S = 600                     # uploads and made files are deleted this long after creation
CLIENT_UPLOAD_BYTES = 200 * 2 ** 20    # what one client may upload within KEEP_FILES_S (20 full files)
DISK_UPLOAD_BYTES = 2 * 2 ** 30        # what the upload folder may hold in all
STREAM_IDLE_S = 5                      # a live stream that sends no frame this long is closed
WORK_LIMIT = MAX_WORKERS               # requests worked on at once, every event together: one
                                       # image decoding worker each, so four hostile files never
                                       # keep a fifth visitor waiting
DELETE_CACHE = (60, KEEP_FILES_S)      # Gradio's (how often to look, how old to delete)
UPLOAD_ONLY = ("{field} takes an uploaded file only. To caption an image on the web, give its URL "
               "in the URL box (API: /caption_url), which the server fetches safely.")
NOT_UPLOADED = ("{field}: the file must be uploaded to this server first (the page does this; with "
                "gradio_client, pass handle_file(path)).")
FAILED = "This request could not be processed; check its parameters against the API page"
log = logging.getLogger("captioner.serving")


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
    any depth; and a bare string given to a file field."""
    if isinstance(value, str):
        return [value] if _takes_files(block) else []
    if isinstance(value, dict):
        location = value.get("path") or value.get("url")
        found = [str(location)] if location else []
        return found + [path for inner in value.values() for path in _file_paths(inner)]
    if isinstance(value, (list, tuple)):
        return [path for inner in value for path in _file_paths(inner)]
    return []


def _takes_files(block) -> bool:
    """Whether a field's value is a file (its data model has a `path`: FileData, ImageData, ...)."""
    return "path" in getattr(getattr(block, "data_model", None), "model_fields", {})


def _uploaded(path: str) -> bool:
    """Whether a path lies in Gradio's upload folder (resolved, so `..` and links cannot leave it)."""
    try:
        return Path(path).resolve().is_relative_to(_upload_folder().resolve())
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


class UploadLimits:
    """ASGI middleware: an upload request may carry at most MAX_UPLOAD_FILES files and
    MAX_UPLOAD_BYTES in all (Gradio caps each file's size, not their number), one client may upload
    CLIENT_UPLOAD_BYTES within KEEP_FILES_S, and the upload folder may hold DISK_UPLOAD_BYTES.
    Refused with 413 (429, 507) before the body is read when the declared length is too large,
    else as soon as it is counted. Parts are counted by the multipart parser Gradio itself uses,
    on the same header, so the two cannot read a request differently."""

    def __init__(self, app):
        self.app = app
        self.sent = collections.defaultdict(collections.deque)    # client -> (time, bytes), oldest first
        self.disk = _FolderSize()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        headers, client = Headers(scope=scope), _client(scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            return await _refuse(send, _too_big())
        if (refusal := self._over_quota(client, int(declared) if declared.isdigit() else 0)):
            return await _refuse(send, *refusal)
        counter = _BodyCounter(headers.get("content-type", ""))
        replied = False

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                counter.feed(message.get("body", b""))
            return message

        async def tracked_send(message):
            nonlocal replied
            replied = replied or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _Refused as refusal:
            if not replied:
                await _refuse(send, str(refusal))
        finally:
            self.sent[client].append((time.monotonic(), counter.size))

    def _over_quota(self, client: str, declared: int) -> tuple[str, int] | None:
        sent, cutoff = self.sent[client], time.monotonic() - KEEP_FILES_S
        while sent and sent[0][0] < cutoff:
            sent.popleft()
        if not sent:
            del self.sent[client]
        elif sum(size for _, size in sent) + declared > CLIENT_UPLOAD_BYTES:
            return (f"Upload refused: at most {CLIENT_UPLOAD_BYTES / 2 ** 20:.0f} MB per client every "
                    f"{KEEP_FILES_S // 60} minutes; try again later", 429)
        if self.disk.size() + declared > DISK_UPLOAD_BYTES:
            return "Upload refused: the server's upload space is full; try again in a few minutes", 507
        return None


class _Refused(Exception):
    pass


def _too_big() -> str:
    return f"Upload refused: at most {MAX_UPLOAD_BYTES / 2 ** 20:.0f} MB per request"


class _BodyCounter:
    """Counts bytes and multipart parts as the body streams in, with python-multipart's parser and
    the boundary read as Gradio reads it (GradioMultiPartParser: parse_options_header, then
    MultipartParser)."""

    def __init__(self, content_type: str):
        self.size, self.parts = 0, 0
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        self.parser = MultipartParser(boundary, {"on_part_begin": self._part}) if boundary else None

    def _part(self) -> None:
        self.parts += 1
        if self.parts > MAX_UPLOAD_FILES:
            raise _Refused(f"Upload refused: at most {MAX_UPLOAD_FILES} file(s) per request")

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_UPLOAD_BYTES:
            raise _Refused(_too_big())
        if self.parser is not None and chunk:
            try:
                self.parser.write(chunk)
            except _Refused:
                raise
            except Exception:         # malformed: Gradio's own parser refuses it with its message
                self.parser = None


class _FolderSize:
    """The bytes in Gradio's upload folder, re-counted at most every few seconds."""

    def __init__(self, every_s: float = 2.0):
        self.every_s, self.counted, self.bytes = every_s, -1e9, 0

    def size(self) -> int:
        if time.monotonic() - self.counted > self.every_s:
            self.bytes, self.counted = _folder_bytes(_upload_folder()), time.monotonic()
        return self.bytes


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _upload_folder() -> Path:
    from gradio.utils import get_upload_folder
    return Path(get_upload_folder())


def sweep_uploads(older_than_s: float = 60) -> int:
    """Remove the empty folders Gradio leaves in its upload folder when it deletes old files (one per
    upload); -> how many. Folders younger than `older_than_s` are left for the file on its way in."""
    removed, cutoff = 0, time.time() - older_than_s
    for root, folders, files in os.walk(_upload_folder(), topdown=False):
        for name in folders:
            path = os.path.join(root, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.rmdir(path)               # refuses a folder that is not empty
                    removed += 1
            except OSError:
                pass
    return removed


class RouteGuard:
    """ASGI middleware in front of every route Gradio mounts:

    - closed (404): Gradio routes this app does not use, among them `/proxy=` (fetches for a
      client), `/process_recording` (ffmpeg on a visitor's file, outside the queue), run history and
      monitoring (per-event counts and latencies);
    - `/file=` refuses a URL (403): Gradio would fetch it for the client (an open proxy);
    - the Host header must name this server when it listens on loopback only (a DNS-rebinding
      page cannot reach a local demo), and X-Forwarded-Host/-Proto count only behind a trusted
      proxy (Spaces): otherwise a client could set the root URL that /config hands out;
    - a request Gradio fails on (an unknown fn_index, an upload with no file name) gets 400 and one
      sentence instead of a bare 500 and a traceback in the log.
    """

    CLOSED = re.compile(r"^/(monitoring|gradio_api/(proxy=|process_recording|run-history|runs/?$|vibe-|"
                        r"undo-vibe-edit|dev/reload|component_server|custom_component))")
    FILE = re.compile(r"^/gradio_api/file[=/](.*)$", re.S)
    LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}

    def __init__(self, app, loopback_only: bool = False, trust_proxy: bool = False):
        self.app, self.loopback_only, self.trust_proxy = app, loopback_only, trust_proxy
        self.extra_hosts = {h.strip().lower() for h in os.environ.get("CAPTIONER_ALLOWED_HOSTS", "").split(",") if h.strip()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if self.CLOSED.match(path):
            return await _refuse(send, "Not found", 404)
        target = self.FILE.match(path)
        if target and re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|//", target.group(1).lstrip()):
            return await _refuse(send, "This server does not fetch URLs for clients", 403)
        if not self._host_allowed(Headers(scope=scope).get("host")):
            return await _refuse(send, "Unknown host", 400)
        if not self.trust_proxy:
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"]
                                         if k.lower() not in (b"x-forwarded-host", b"x-forwarded-proto", b"forwarded")])
        replied = False

        async def tracked_send(message):
            nonlocal replied
            replied = replied or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as error:
            log.warning("%s %s refused: %s: %s", scope["method"], path[:80], type(error).__name__, str(error)[:200])
            if not replied:
                await _refuse(send, json.dumps({"error": FAILED}), 400, b"application/json")

    def _host_allowed(self, host: str | None) -> bool:
        if not self.loopback_only or host is None:
            return True
        name = host.lower().rsplit(":", 1)[0] if not host.endswith("]") else host.lower()
        return name in self.LOOPBACK or name in self.extra_hosts or name.endswith(".gradio.live")


class IdleStreams:
    """ASGI middleware: a streaming event (the live camera) that has sent no frame for
    STREAM_IDLE_S is closed, as the browser's own Stop closes it, so a client that joins and sends
    nothing cannot hold a stream slot (Gradio waits for the next frame up to the event's time limit).

    Gradio has no setting for this: frames are seen here (POST .../stream/{event_id}), and the
    running streams are read from the queue's `active_jobs`, then closed the way Gradio's
    `/stream/{event_id}/close` route closes them."""

    STREAM = re.compile(r"^/gradio_api/stream/([^/]+)$")

    def __init__(self, app, idle_s: float):
        self.app, self.idle_s = app, idle_s
        self.seen: dict[str, float] = {}       # event id -> when it last sent a frame, or started
        self.watchdog = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if self.watchdog is None and "app" in scope:
                self.watchdog = asyncio.get_running_loop().create_task(self._watch(scope["app"]))
            frame = self.STREAM.match(scope["path"])
            if frame and scope["method"] == "POST":
                self.seen[frame.group(1)] = time.monotonic()
        return await self.app(scope, receive, send)

    async def _watch(self, app) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_s / 4))
            try:
                self.close_idle(app.get_blocks()._queue)
            except Exception:                   # the watchdog must outlive any one bad look
                log.exception("idle stream watchdog")

    def close_idle(self, queue) -> None:
        now, running = time.monotonic(), set()
        for job in queue.active_jobs:
            for event in job or ():
                if not event.streaming or event.closed:
                    continue
                running.add(event._id)
                if now - self.seen.setdefault(event._id, now) > self.idle_s:
                    event.run_time, event.closed = math.inf, True
                    event.signal.set()
        self.seen = {key: when for key, when in self.seen.items() if key in running}


def _client(scope) -> str:
    return (scope.get("client") or ("?",))[0]


async def _refuse(send, message: str, status: int = 413, kind: bytes = b"text/plain; charset=utf-8") -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


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


def launch_options(server_name: str) -> dict:
    """What `launch()` needs for the limits above, for a server listening on `server_name`."""
    guard = Middleware(RouteGuard, loopback_only=server_name in ("127.0.0.1", "localhost", "::1"),
                       trust_proxy=bool(os.environ.get("SPACE_ID") or os.environ.get("CAPTIONER_TRUST_PROXY")))
    return {"max_file_size": MAX_FILE_SIZE, "enable_monitoring": False,
            "app_kwargs": {"middleware": [guard, Middleware(UploadLimits),
                                          Middleware(IdleStreams, idle_s=STREAM_IDLE_S)]}}
