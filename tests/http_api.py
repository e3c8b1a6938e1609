"""Talking to a running app the way an outside client does: the plain HTTP API (which can send
what gradio_client would not) and the page's own queue."""
import json
import uuid

import httpx

from captioner.options import DecodingOptions

# Carrier-grade NAT (100.64.0.0/10), which Gradio's own downloader counted public; a /30 of its own
# per run, so that runs side by side do not share a route.
_NET = 100 * 2 ** 24 + 64 * 2 ** 16 + 4 * int(uuid.uuid4().int % 2 ** 14)
HOST_IP, OUTER_IP = (".".join(str((_NET + n) >> shift & 255) for shift in (24, 16, 8, 0)) for n in (1, 2))


# Every decoding option as a client sends it (the tiny model writes at most 8 words).
OPTIONS = [8 if knob.name == "max_length" else knob.default for knob in DecodingOptions.knobs()]
POSITION = {knob.name: n + 1 for n, knob in enumerate(DecodingOptions.knobs())}


def call(demo, api_name: str, data: list, timeout: float = 30) -> tuple[str, object]:
    """POST /gradio_api/call/NAME (options not given take their defaults), then read its event
    stream -> ("complete" | "error", payload)."""
    data = data + OPTIONS[len(data) - 1:]
    base = demo.local_url.rstrip("/") + "/gradio_api/call/" + api_name
    body = json.dumps({"data": data}, allow_nan=True)          # NaN and Infinity as a client may send
    with httpx.Client(timeout=timeout) as http:
        reply = http.post(base, content=body, headers={"Content-Type": "application/json"})
        reply.raise_for_status()
        stream = http.get(f"{base}/{reply.json()['event_id']}")
    event = payload = None
    for line in stream.text.splitlines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event in ("complete", "error"):
            return event, json.loads(line[len("data: "):])
    raise AssertionError(f"no result in {stream.text[:300]!r}")


def upload(demo, path) -> dict:
    with open(path, "rb") as file, httpx.Client(timeout=30) as http:
        reply = http.post(demo.local_url.rstrip("/") + "/gradio_api/upload", files={"files": file})
    reply.raise_for_status()
    return {"path": reply.json()[0], "meta": {"_type": "gradio.FileData"}}


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def join(demo, fn_index: int, data: list, session: str | None = None, timeout: float = 60,
         until: tuple = ("process_completed",), event_data: dict | None = None) -> tuple[list[dict], str]:
    """POST /gradio_api/queue/join for a page event (as the browser does), then read the session's
    messages until one whose `msg` is in `until` -> (messages, session hash)."""
    session = session or uuid.uuid4().hex
    base = demo.local_url.rstrip("/") + "/gradio_api"
    with httpx.Client(timeout=timeout) as http:
        joined = http.post(f"{base}/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                       "event_data": event_data, "trigger_id": None})
        joined.raise_for_status()
        messages = []
        with http.stream("GET", f"{base}/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    messages.append(json.loads(line[len("data: "):]))
                    if messages[-1].get("msg") in until:
                        break
    return messages, session


def fn_index(demo, name: str) -> int:
    """The page event whose function is `name` (its index in the config's dependencies)."""
    return next(n for n, fn in enumerate(demo.fns.values()) if fn.name == name)
