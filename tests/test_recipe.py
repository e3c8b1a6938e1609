"""The default model's recipe is one data file (recipes/default.toml) that `make model` reads."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from captioner.config import CheckpointConfig, ModelConfig
from captioner.recipe import DEFAULT, load_recipe

ROOT = Path(__file__).resolve().parent.parent


def test_the_recipe_says_every_way_the_shipped_model_differs_from_the_config_defaults():
    """ModelConfig's defaults are the plain Show, Attend and Tell; the recipe lists each field the
    shipped model sets otherwise. Fields set by training (the encoder's grid, the vocabulary) and those
    calibration chose after it (the prior's scale, the copy share, the evidence gates' thresholds, the
    noun confidences' scaling, the person probe) are the only others that differ."""
    recipe = load_recipe()
    shipped = CheckpointConfig.from_dict(json.loads((ROOT / "assets" / "model" / "config.json").read_text())).model
    stated = recipe.differences()["model"]
    text = DEFAULT.read_text()
    for field, value in stated.items():
        assert f"\n{field} = " in text, field
    after_training = {"grid_size", "feature_dim", "vocab_size", "word_prior_scale", "copy_weight",
                      "noun_evidence", "setting_evidence", "noun_confidence_slope", "noun_confidence_bias",
                      "noun_confidence_evidence", "person_face", "person_body", "person_bias"}
    differ = {f.name for f in dataclasses.fields(ModelConfig)
              if getattr(shipped, f.name) != getattr(ModelConfig(), f.name)}
    assert differ - after_training <= set(stated), differ - set(stated)
    for field in set(stated) - after_training:
        assert getattr(shipped, field) == stated[field], field


def test_a_recipe_with_an_unknown_or_wrong_field_is_refused_naming_it(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT.read_text().replace("epochs = 3", "epochs = 3\nepoch = 4"))
    with pytest.raises(ValueError, match="unknown TrainConfig keys: epoch"):
        load_recipe(bad)
    bad.write_text(DEFAULT.read_text().replace("image_size = 256", 'image_size = "big"'))
    with pytest.raises(ValueError, match="model.image_size must be an int"):
        load_recipe(bad)
    bad.write_text(DEFAULT.read_text().replace("workers = 2", "workers = 2\nthreads = 8"))
    with pytest.raises(ValueError, match="threads"):
        load_recipe(bad)


def test_make_models_help_fits_on_a_screen():
    shown = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_model.py"), "--help"],
                           capture_output=True, text=True, check=True).stdout
    assert len(shown.splitlines()) <= 30 and "--recipe" in shown
