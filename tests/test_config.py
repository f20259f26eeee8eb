"""Configs compose: TrainSettings declares each training option once, and it reaches
TrainConfig, StudyConfig (and so the study's TOML file) and `orthocore train`'s flags."""

import dataclasses
import json

import pytest

from orthocore import cli
from orthocore.checks import ArgumentTypeError
from orthocore.study import StudyConfig, pipeline
from orthocore.study.seeds import model_seed
from orthocore.train.config import TrainConfig, TrainSettings, settings_of

SETTINGS = [f.name for f in dataclasses.fields(TrainSettings)]


def test_every_setting_is_a_field_of_both_configs_and_a_train_flag():
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    study_fields = {f.name for f in dataclasses.fields(StudyConfig)}
    assert set(SETTINGS) <= train_fields and set(SETTINGS) <= study_fields
    destinations = set(vars(cli.build_parser().parse_args(["train"])))
    assert train_fields - {"progress"} <= destinations


def test_cli_flags_build_the_config(monkeypatch):
    captured = {}
    monkeypatch.setattr("orthocore.train.train", lambda config: captured.setdefault("config", config))
    argv = ["train", "--optimizer", "sgd", "--lr", "0.05", "--lambda", "2", "--reference", "a.ckpt",
            "--reference", "b.ckpt", "--augment", "--seed", "3", "--no-progress"]  # fmt: skip
    with pytest.raises(AttributeError):  # the stand-in returns the config, not a TrainResult
        cli.main(argv)
    config = captured["config"]
    assert (config.optimizer, config.lr, config.lam, config.references) == ("sgd", 0.05, 2.0, ["a.ckpt", "b.ckpt"])
    assert config.augment and not config.finetune and config.seed == 3 and config.progress is False
    assert config.arch == TrainConfig().arch and config.momentum is None


def test_a_study_passes_every_training_setting_to_its_models(tmp_path, monkeypatch):
    study = StudyConfig(out=str(tmp_path / "run"), optimizer="sgd", lr=0.2, cache="none", init="xavier")
    seen = []

    def fake_train(config):
        seen.append(config)
        raise RuntimeError("stop")

    monkeypatch.setattr(pipeline, "ensure_trained", fake_train)
    with pytest.raises(RuntimeError, match="stop"):
        pipeline.train_models(study, 2, progress=False)
    (config,) = seen
    assert settings_of(config) == settings_of(study)
    assert (config.lam, config.seed, config.references) == (0.0, model_seed(2, 0), [])


@pytest.mark.parametrize(
    ("cls", "change", "match"),
    [
        (TrainConfig, {"seed": -1}, "seed must be an integer >= 0"),
        (TrainConfig, {"seed": "zero"}, "seed must be an integer"),
        (TrainConfig, {"lam": float("inf")}, "lam must be a finite number >= 0"),
        (TrainConfig, {"augment": "no"}, "augment must be true or false"),
        (TrainConfig, {"batch_size": 2.0}, "batch_size must be an integer"),
        (TrainConfig, {"lr": 0.0}, "lr must be a finite number > 0"),
        (TrainConfig, {"device": "banana"}, "device: expected one of auto, cpu, cuda"),
        (TrainConfig, {"out": 5}, "out: expected a folder path"),
        (TrainConfig, {"device": 0}, "device: expected one of auto, cpu, cuda, got int 0"),
        (TrainConfig, {"references": "k.ckpt"}, "references: expected a list of model specs"),
        (TrainConfig, {"data": None}, "data: expected a string, got NoneType"),
        (StudyConfig, {"security_defenses": "JPEG-Quality=80"}, "security_defenses: expected a list of defense labels"),
        (StudyConfig, {"security_defenses": ["JPEG-Quality=81"]}, "security_defenses must be one of"),
        (StudyConfig, {"lambdas": 1.0}, "lambdas must be a list of numbers"),
        (StudyConfig, {"defenses": "no"}, "defenses must be true or false"),
        (StudyConfig, {"seeds": [0, -3]}, "seeds must be an integer >= 0"),
        (StudyConfig, {"seeds": 0}, "seeds must be a list of numbers"),
        (StudyConfig, {"optimizer": "rmsprop"}, "optimizer must be one of adam, sgd"),
        (StudyConfig, {"max_epochs": 0}, "max_epochs must be an integer >= 1"),
    ],
)
def test_one_validation_for_every_entry_point(tmp_path, cls, change, match):
    """The same field rules hold for the Python API, a study's TOML and the CLI; a wrong
    type is a ValueError (reported as bad input), never a TypeError traceback."""
    config = cls(**{"out": str(tmp_path / "run"), **change})
    with pytest.raises(ValueError, match=match):
        config.validate()


@pytest.mark.parametrize(
    ("cls", "change"),
    [(TrainConfig, {"out": 5}), (TrainConfig, {"device": 0}), (TrainConfig, {"references": "k.ckpt"}),
     (TrainConfig, {"data": None}), (StudyConfig, {"security_defenses": "JPEG-Quality=80"}), (StudyConfig, {"out": 1})],
)  # fmt: skip
def test_a_wrong_type_is_an_argument_type_error(tmp_path, cls, change):
    """Both a TypeError and a ValueError, as every check of orthocore.checks raises."""
    config = cls(**{"out": str(tmp_path / "run"), **change})
    with pytest.raises(ArgumentTypeError):
        config.validate()


def test_training_does_not_change_the_callers_config(tmp_path):
    from orthocore.train import train

    config = TrainConfig(out=str(tmp_path / "run"), max_epochs=1, eval_every=1, progress=False)
    before = dataclasses.asdict(config)
    result = train(config)
    assert dataclasses.asdict(config) == before  # optimizer stays None here ...
    recorded = json.loads((result.out / "run.json").read_text())["config"]
    assert (recorded["optimizer"], recorded["lr"]) == ("adam", 1e-3)  # ... and is resolved in the record
