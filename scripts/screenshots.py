"""Screenshots of the web demo for the README, desktop (1280x900) and phone (390x844) widths.

    python scripts/screenshots.py [--checkpoint DIR|hf://owner/repo] [--out docs/screenshots]

Runs the browser test (tests/test_app_browser.py) with CAPTIONER_SCREENSHOTS=1: the app serves the
real model (--checkpoint, else $CAPTIONER_CHECKPOINT, else the shipped default under assets/model)
with the examples in assets/examples, and Debian's Chromium (/usr/bin/chromium) takes the pictures
after captioning the first example greedily (desktop.png) and on a phone (phone.png).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="checkpoint dir or hf://owner/repo")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    env = dict(os.environ, CAPTIONER_SCREENSHOTS="1", CAPTIONER_SCREENSHOTS_DIR=str(Path(args.out).resolve()))
    if args.checkpoint:
        env["CAPTIONER_CHECKPOINT"] = args.checkpoint
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_app_browser.py", "-q", "-rs"],
                          cwd=ROOT, env=env)
    if done.returncode:
        return done.returncode
    pictures = [Path(args.out) / name for name in ("desktop.png", "phone.png")]
    missing = [str(p) for p in pictures if not p.exists()]
    if missing:
        print(f"no screenshots written ({', '.join(missing)} missing): was the browser test skipped?",
              file=sys.stderr)
        return 1
    print("\n".join(map(str, pictures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
