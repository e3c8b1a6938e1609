"""Decoding knobs are defined once (captioner.options); the API, the CLI and the page follow them."""
import math

import pytest

from captioner.__main__ import build_parser
from captioner.images import InputError
from captioner.options import DecodingOptions, visibility

KNOBS = {knob.name: knob for knob in DecodingOptions.knobs()}
NUMERIC = [k for k in KNOBS.values() if not k.metadata["choices"]]


def test_every_knob_has_a_default_limits_a_label_and_help():
    for knob in KNOBS.values():
        meta = knob.metadata
        assert meta["label"] and meta["help"]
        if not meta["choices"]:
            assert meta["low"] < meta["high"]
            assert knob.default is None or meta["low"] <= knob.default <= meta["high"]


@pytest.mark.parametrize("knob", NUMERIC, ids=lambda k: k.name)
def test_the_api_refuses_each_limit_naming_the_knob(knob):
    low, high, label = knob.metadata["low"], knob.metadata["high"], knob.metadata["label"]
    assert getattr(DecodingOptions.parse(**{knob.name: low}), knob.name) == low
    assert getattr(DecodingOptions.parse(**{knob.name: high}), knob.name) == high
    step = 1 if isinstance(low, int) else 0.01
    for bad in (low - step, high + step, "abc", math.inf):
        with pytest.raises(InputError, match=label.split(" (")[0]):
            DecodingOptions.parse(**{knob.name: bad})


def test_the_cli_has_a_flag_per_knob_with_the_same_defaults_and_limits():
    caption = build_parser()._subparsers._group_actions[0].choices["caption"]
    flags = {action.dest: action for action in caption._actions}
    for name, knob in KNOBS.items():
        assert name in flags, f"--{name.replace('_', '-')} missing"
        assert flags[name].default is None                   # unset: DecodingOptions' default applies
        if knob.metadata["choices"]:
            assert tuple(flags[name].choices) == knob.metadata["choices"]
        else:
            assert f"{knob.metadata['low']:g}..{knob.metadata['high']:g}" in flags[name].help


def test_the_page_controls_and_endpoints_follow_the_knobs(tiny_app):
    config = tiny_app.get_config_file()
    by_label = {c["props"].get("label"): c["props"] for c in config["components"]}
    for knob in NUMERIC:
        props = by_label[knob.metadata["label"]]
        if knob.name == "seed":   # a text box (a number box cannot be empty); its limits in the hint
            assert props["value"] == "" and f"{knob.metadata['high']}" in props["placeholder"]
            continue
        assert (props["minimum"], props["maximum"]) == (knob.metadata["low"], knob.metadata["high"])
    strategy = by_label[KNOBS["strategy"].metadata["label"]]
    assert [value for _, value in strategy["choices"]] == list(KNOBS["strategy"].metadata["choices"])
    for endpoint in ("caption", "caption_url"):
        info = tiny_app.get_api_info()["named_endpoints"][f"/{endpoint}"]
        assert [p["parameter_name"] for p in info["parameters"][1:]] == list(KNOBS)


def test_visibility_follows_each_knobs_strategy():
    assert visibility("greedy") == {name: KNOBS[name].metadata["only"] is None for name in list(KNOBS)[1:]}
    assert visibility("beam")["length_alpha"] and not visibility("sample")["length_alpha"]
