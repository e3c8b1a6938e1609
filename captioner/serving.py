"""What the web server adds around Gradio so that a public client cannot use it against us.

- File fields take uploads only. Gradio itself downloads any URL a client puts in a file field's
  `path` (with `safehttpx`: no size cap, no deadline, gzip decoded, carrier-grade NAT and 6to4
  counted public), before any of our code runs. `GuardedBlocks` refuses such a field first, so
  URLs only ever reach our own fetcher (captioner.urls) through the URL box and /caption_url.
- Every refusal carries a message that names the field and shows no server path.
- Uploads are capped per request (count and total bytes, `UploadLimits`), and Gradio deletes
  what was uploaded or made for a visitor after `KEEP_FILES_S`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
from gradio_client import utils as client_utils
from starlette.middleware import Middleware

MAX_FILE_SIZE = "10mb"                 # one uploaded file
MAX_UPLOAD_FILES = 1                   # files in one upload request (the page and the API send one)
MAX_UPLOAD_BYTES = 10 * 2 ** 20 + 64 * 2 ** 10   # one request: a 10 MB file and its multipart framing
KEEP_FILES_S = 600                     # uploads and made files are deleted this long after creation
DELETE_CACHE = (60, KEEP_FILES_S)      # Gradio's (how often to look, how old to delete)
UPLOAD_ONLY = ("{field} takes an uploaded file only. To caption an image on the web, give its URL "
               "in the URL box (API: /caption_url), which the server fetches safely.")
NOT_UPLOADED = ("{field}: the file must be uploaded to this server first (the page does this; with "
                "gradio_client, pass handle_file(path)).")
log = logging.getLogger("captioner.serving")


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose events refuse remote or server-side files and name any input they refuse."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        if len(inputs) < len(block_fn.inputs):
            names = ", ".join(_name(block) for block in block_fn.inputs)
            raise gr.Error(f"Expected {len(block_fn.inputs)} inputs ({names}), got {len(inputs)}",
                           print_exception=False)
        for block, value in zip(block_fn.inputs, inputs):
            for path in _file_paths(value):
                if client_utils.is_http_url_like(path) or "://" in path:
                    raise gr.Error(UPLOAD_ONLY.format(field=_name(block)), print_exception=False)
                if not explicit_call and not _uploaded(path):
                    raise gr.Error(NOT_UPLOADED.format(field=_name(block)), print_exception=False)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Exception as error:
            raise gr.Error(_refusal(block_fn.inputs, inputs, error), print_exception=False) from None


def _file_paths(value) -> list[str]:
    """The `path` of every Gradio file object (`{"path": ..., "meta": {"_type": "gradio.FileData"}}`)
    anywhere in one input value."""
    found = []
    client_utils.traverse(value, lambda d: found.append(str(d.get("path") or d.get("url") or "")) or d,
                          client_utils.is_file_obj_with_meta)
    return found


def _uploaded(path: str) -> bool:
    """Whether a path lies in Gradio's upload folder (resolved, so `..` and links cannot leave it)."""
    from gradio.utils import get_upload_folder
    try:
        return Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        return False


def _name(block) -> str:
    return f'"{block.label}"' if getattr(block, "label", None) else f"The {block.get_block_name()} field"


def _refusal(blocks, inputs, error: Exception) -> str:
    """A message naming the input Gradio could not read, found by reading each again on its own."""
    for block, value in zip(blocks, inputs):
        if not _file_paths(value):
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
    MAX_UPLOAD_BYTES in all (Gradio caps each file's size, not their number). Refused with 413
    before the body is read when the declared length is too large, else as soon as it is counted."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
            return await _refuse(send, _too_big())
        boundary = _boundary(headers.get(b"content-type", b""))
        counter = _BodyCounter(boundary)
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


class _Refused(Exception):
    pass


def _too_big() -> str:
    return f"Upload refused: at most {MAX_UPLOAD_BYTES / 2 ** 20:.0f} MB per request"


def _boundary(content_type: bytes) -> bytes:
    for part in content_type.split(b";"):
        key, _, value = part.strip().partition(b"=")
        if key.lower() == b"boundary":
            return b"--" + value.strip(b'"')
    return b""


class _BodyCounter:
    """Counts bytes and multipart parts as the body streams in (a part starts at each boundary line;
    the boundary may be split across chunks, so the tail of the last chunk is kept)."""

    def __init__(self, boundary: bytes):
        self.boundary, self.size, self.parts, self.tail = boundary, 0, 0, b""

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_UPLOAD_BYTES:
            raise _Refused(_too_big())
        if self.boundary:
            window = self.tail + chunk
            self.parts += window.count(self.boundary + b"\r\n")
            self.tail = window[-(len(self.boundary) + 1):]
            if self.parts > MAX_UPLOAD_FILES:
                raise _Refused(f"Upload refused: at most {MAX_UPLOAD_FILES} file(s) per request")


async def _refuse(send, message: str) -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def launch_options() -> dict:
    """What `launch()` needs for the limits above."""
    return {"max_file_size": MAX_FILE_SIZE, "app_kwargs": {"middleware": [Middleware(UploadLimits)]}}
