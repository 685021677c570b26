"""One configuration loader: a key a configuration does not have is an error that names it."""

from __future__ import annotations

import json

import pytest

from ml.config import ConfigError, load_config
from ml.contours.model import ContourModelConfig
from ml.ctgrade.data import CtCropConfig
from ml.lesions.crops import CropConfig
from ml.lesions.model import LesionModelConfig
from ml.pipelines import check_config
from ml.pipelines.ctgrade import _config as ct_config
from ml.pipelines.lesions import _config as lesion_config
from ml.training import TrainConfig


def test_a_typo_in_a_model_config_names_the_key() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown key 'chanels' in LesionModelConfig; known keys: .*channels"
    ):
        LesionModelConfig.from_dict({"chanels": [8, 16]})
    with pytest.raises(ConfigError, match="'crop_size'"):
        CropConfig.from_dict({"mode": "joint", "crop_size": 64})
    with pytest.raises(ConfigError, match="'widht' in ContourModelConfig"):
        ContourModelConfig.from_dict({"widht": 4})
    with pytest.raises(ConfigError, match="'epoch' in TrainConfig"):
        TrainConfig.from_dict({"epoch": 10})


def test_a_card_round_trips_through_json_lists_back_to_tuples() -> None:
    config = CtCropConfig(box_mm=(64.0, 70.0, 64.0), seg_shape=(16, 32, 32))
    assert CtCropConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert load_config(LesionModelConfig, {"channels": [4, 8]}).channels == (4, 8)


@pytest.mark.parametrize("kind", ["contour", "lesions", "ctgrade"])
def test_a_training_config_rejects_epoch_for_epochs(kind: str) -> None:
    check_config(kind, {"epochs": 3, "device": "cpu"})
    with pytest.raises(ConfigError, match=f"unknown key 'epoch' in the {kind} training configuration"):
        check_config(kind, {"epoch": 10})


def test_the_pipelines_reject_unknown_keys_before_training() -> None:
    with pytest.raises(ConfigError, match="'epoch'"):
        lesion_config({"epoch": 10})
    with pytest.raises(ConfigError, match="'seg_epochs'"):
        ct_config({"seg_epochs": 2})
    assert lesion_config({"epochs": 2})["train"]["epochs"] == 2
