"""Every ImageNet class has an everyday name (issue 29, item 1): assets/encoders/imagenet_names.tsv."""
import csv
import json
import re

import pytest

from captioner.class_names import TABLE, class_names

CORRECTIONS = TABLE.with_name("imagenet_name_corrections.tsv")
by_imagenet = lambda: {row.imagenet: row for row in class_names()}


def test_the_table_names_every_class_in_order_with_the_classifiers_wordnet_ids():
    names = class_names()
    assert len(names) == 1000 and [n.index for n in names] == list(range(1000))
    words = json.loads(TABLE.with_name("imagenet_wordnet.json").read_text())
    with TABLE.open() as f:
        wnids = [row["wnid"] for row in csv.DictReader(f, delimiter="\t")]
    assert wnids == [words[str(i)]["wnid"] for i in range(1000)]
    assert all(n.imagenet == words[str(n.index)]["own"][0] for n in names)
    for n in names:
        assert re.fullmatch(r"[a-z][a-z' -]*[a-z]", n.name), n
        assert n.plural and n.article in ("a", "an", ""), n


@pytest.mark.parametrize("imagenet, name", [
    ("golden retriever", "dog"), ("pug", "dog"), ("tabby", "cat"), ("persian cat", "cat"), ("airliner", "airplane"),
    ("african crocodile", "crocodile"), ("rock crab", "crab"), ("frying pan", "pan"), ("castle", "castle"),
    ("cheetah", "cheetah"), ("screwdriver", "screwdriver"), ("mountain tent", "tent"), ("running shoe", "shoe"),
    ("tiger shark", "shark"), ("bullfrog", "frog"), ("hotdog", "hot dog"), ("granny smith", "apple"),
    ("bolete", "mushroom"), ("goldfinch", "finch"), ("ladybug", "beetle"), ("lion", "lion"), ("koala", "koala"),
])
def test_a_class_gets_the_word_a_person_would_use(imagenet, name):
    assert by_imagenet()[imagenet].name == name


def test_plurals_and_articles_are_english():
    rows = by_imagenet()
    assert rows["goose"].plural == "geese" and rows["mouse"].plural == "mice" and rows["tench"].plural == "fish"
    assert rows["school bus"].plural == "buses" and rows["cheetah"].plural == "cheetahs"
    assert rows["airliner"].with_article() == "an airplane" and rows["umbrella"].with_article() == "an umbrella"
    assert rows["unicycle"].with_article() == "a unicycle" and rows["hay"].with_article() == "hay"
    assert rows["jean"].with_article() == "jeans" and rows["jean"].plural == "jeans"
    # Plural nouns inflect would give one more "s"
    for plural_noun in ("binoculars", "parallel bars", "swimming trunks"):
        assert rows[plural_noun].plural == rows[plural_noun].name == rows[plural_noun].with_article()
    assert not [row.plural for row in rows.values() if row.plural.endswith("ss")]


def test_every_hand_correction_names_a_class_and_is_applied():
    with CORRECTIONS.open() as f:
        corrections = list(csv.DictReader(f, delimiter="\t"))
    rows = [row for row in class_names() if row.rule == "corrected"]
    assert len({c["imagenet"] for c in corrections}) == len(corrections) and corrections
    applied = {row.imagenet for row in rows}
    for fix in corrections:
        assert fix["imagenet"] in applied and fix["why"], fix
        for row in (r for r in rows if r.imagenet == fix["imagenet"]):
            assert row.name == fix["name"] and (not fix["plural"] or row.plural == fix["plural"])
            assert row.article == ("" if fix["article"] == "-" else row.article)
    assert not applied - {c["imagenet"] for c in corrections}
