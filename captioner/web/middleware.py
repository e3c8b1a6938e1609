"""The HTTP layer in front of Gradio's routes: ASGI middleware that `serving.launch_options` puts
around the app, with the limits it gives them.

- `UploadLimits`: files and bytes per upload request, per client and on disk.
- `RouteGuard`: routes closed or refusing URLs, the Host header, no bare 500s.
- `IdleStreams`: a live stream that sends nothing gives its slot back.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import os
import re
import time
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers

log = logging.getLogger("captioner.web.middleware")


class UploadLimits:
    """An upload request may carry at most `files` files and `request_bytes` in all (Gradio caps
    each file's size, not their number), one client may upload `client_bytes` within `window_s`,
    and the upload folder may hold `disk_bytes`. Refused with 413 (429, 507) before the body is
    read when the declared length is too large, else as soon as it is counted. Parts are counted by
    the multipart parser Gradio itself uses, on the header as Gradio reads it, so the two cannot
    read a request differently."""

    def __init__(self, app, files: int, request_bytes: int, client_bytes: int, disk_bytes: int, window_s: float):
        self.app, self.files, self.request_bytes = app, files, request_bytes
        self.client_bytes, self.disk_bytes, self.window_s = client_bytes, disk_bytes, window_s
        self.sent = collections.defaultdict(collections.deque)    # client -> (time, bytes), oldest first
        self.disk = _FolderSize()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        headers, client = Headers(scope=scope), _client(scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.request_bytes:
            return await _refuse(send, _too_big(self.request_bytes))
        if (refusal := self._over_quota(client, int(declared) if declared.isdigit() else 0)):
            return await _refuse(send, *refusal)
        counter, replies = _BodyCounter(headers.get("content-type", ""), self.files, self.request_bytes), _Replies(send)

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                counter.feed(message.get("body", b""))
            return message

        try:
            await self.app(scope, counted_receive, replies)
        except _Refused as refusal:
            if not replies.started:
                await _refuse(send, str(refusal))
        finally:
            self.sent[client].append((time.monotonic(), counter.size))

    def _over_quota(self, client: str, declared: int) -> tuple[str, int] | None:
        sent, cutoff = self.sent[client], time.monotonic() - self.window_s
        while sent and sent[0][0] < cutoff:
            sent.popleft()
        if not sent:
            del self.sent[client]
        elif sum(size for _, size in sent) + declared > self.client_bytes:
            return (f"Upload refused: at most {self.client_bytes / 2 ** 20:.0f} MB per client every "
                    f"{self.window_s / 60:g} minutes; try again later", 429)
        if self.disk.size() + declared > self.disk_bytes:
            return "Upload refused: the server's upload space is full; try again in a few minutes", 507
        return None


class _Refused(Exception):
    pass


class _Replies:
    """An ASGI `send` that remembers whether the response has started (after that, no refusal)."""

    def __init__(self, send):
        self.send, self.started = send, False

    async def __call__(self, message):
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


def _too_big(limit: int) -> str:
    return f"Upload refused: at most {limit / 2 ** 20:.0f} MB per request"


class _BodyCounter:
    """Counts bytes and multipart parts as the body streams in, with python-multipart's parser and
    the boundary read as Gradio reads it (GradioMultiPartParser: parse_options_header, then
    MultipartParser)."""

    def __init__(self, content_type: str, files: int, request_bytes: int):
        self.size, self.parts, self.files, self.request_bytes = 0, 0, files, request_bytes
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        self.parser = MultipartParser(boundary, {"on_part_begin": self._part}) if boundary else None

    def _part(self) -> None:
        self.parts += 1
        if self.parts > self.files:
            raise _Refused(f"Upload refused: at most {self.files} file(s) per request")

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.request_bytes:
            raise _Refused(_too_big(self.request_bytes))
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
            self.bytes, self.counted = _folder_bytes(upload_folder()), time.monotonic()
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


def upload_folder() -> Path:
    """Gradio's upload folder (GRADIO_TEMP_DIR, else /tmp/gradio)."""
    from gradio.utils import get_upload_folder
    return Path(get_upload_folder())


class RouteGuard:
    """In front of every route Gradio mounts:

    - closed (404): Gradio routes this app does not use, among them `/proxy=` (fetches for a
      client), `/process_recording` (ffmpeg on a visitor's file, outside the queue), run history and
      monitoring (per-event counts and latencies);
    - `/file=` refuses a URL (403): Gradio would fetch it for the client (an open proxy);
    - the Host header must name this server when it listens on loopback only (a DNS-rebinding
      page cannot reach a local demo), and X-Forwarded-Host/-Proto count only behind a trusted
      proxy (Spaces): otherwise a client could set the root URL that /config hands out;
    - a request body other than an upload may hold `body_bytes` (413): a camera frame or an image
      sent inline as a data URL is decoded by Gradio, so its size is bounded here;
    - a request Gradio fails on (an unknown fn_index, an upload with no file name) gets 400 and one
      sentence instead of a bare 500 and a traceback in the log.
    """

    CLOSED = re.compile(r"^/(monitoring|gradio_api/(proxy=|process_recording|run-history|runs/?$|vibe-|"
                        r"undo-vibe-edit|dev/reload|component_server|custom_component))")
    FILE = re.compile(r"^/gradio_api/file[=/](.*)$", re.S)
    LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}

    def __init__(self, app, failed: str, body_bytes: int, loopback_only: bool = False, trust_proxy: bool = False):
        self.app, self.failed, self.body_bytes = app, failed, body_bytes
        self.loopback_only, self.trust_proxy = loopback_only, trust_proxy
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
        if scope["method"] == "POST" and not path.endswith("/upload"):
            declared = Headers(scope=scope).get("content-length", "")
            if declared.isdigit() and int(declared) > self.body_bytes:
                return await _refuse(send, self._too_big())
            receive = self._capped(receive)
        replies = _Replies(send)
        try:
            await self.app(scope, receive, replies)
        except _Refused as refusal:
            if not replies.started:
                await _refuse(send, str(refusal))
        except Exception as error:
            log.warning("%s %s refused: %s: %s", scope["method"], path[:80], type(error).__name__, str(error)[:200])
            if not replies.started:
                await _refuse(send, json.dumps({"error": self.failed}), 400, b"application/json")

    def _capped(self, receive):
        """`receive` that refuses a body past `body_bytes` as it streams in."""
        seen = 0

        async def capped():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.body_bytes:
                raise _Refused(self._too_big())
            return message
        return capped

    def _too_big(self) -> str:
        return f"Request refused: at most {self.body_bytes / 2 ** 20:.0f} MB in a request body"

    def _host_allowed(self, host: str | None) -> bool:
        if not self.loopback_only or host is None:
            return True
        name = host.lower().rsplit(":", 1)[0] if not host.endswith("]") else host.lower()
        return name in self.LOOPBACK or name in self.extra_hosts or name.endswith(".gradio.live")


class IdleStreams:
    """A streaming event (the live camera) that has sent no frame for
    `idle_s` is closed, as the browser's own Stop closes it, so a client that joins and sends
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

