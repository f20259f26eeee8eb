"""Every setting is declared once (orthocore.settings, orthocore.evaluate.settings): the
commands' flags and their defaults come from the settings dataclasses, a study is built
on all of them, and each default exists in one place."""

import argparse
import dataclasses

import pytest

from orthocore import cli
from orthocore.evaluate.settings import (
    DefenseConfig,
    DefenseSettings,
    EvaluationSettings,
    SecurityConfig,
    SecuritySettings,
    SurrogateSettings,
    TransferConfig,
    TransferSettings,
)
from orthocore.settings import check_bounds, declared_default, eps_grid, option
from orthocore.study import StudyConfig
from orthocore.train.config import TrainConfig, TrainSettings


def _command(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions}


@pytest.mark.parametrize(
    ("command", "classes"),
    [("attack", [TransferConfig]), ("defend", [DefenseConfig]), ("security", [SecurityConfig, SurrogateSettings]),
     ("train", [TrainConfig])],
)  # fmt: skip
def test_every_field_is_a_flag_whose_default_is_the_fields(command, classes):
    actions = _actions(_command(command))
    for cls in classes:
        for item in dataclasses.fields(cls):
            if command == "train" and item.name == "progress":
                continue  # --no-progress, the command's own
            action = actions[item.name]
            default = declared_default(item)
            if isinstance(default, list):  # a repeatable option: given, it replaces the whole default list
                assert action.default is None and all(str(value) in action.help for value in default), item.name
            elif command == "train" and isinstance(default, bool):
                assert action.default is default, item.name
            else:
                assert action.default == default, (command, item.name, action.default, default)


def test_run_overrides_every_evaluation_setting_and_names_its_default():
    actions = _actions(_command("run"))
    for item in dataclasses.fields(EvaluationSettings):
        action = actions[item.name]
        assert action.default is None and action.option_strings == ["--" + item.name.replace("_", "-")] + (
            ["--no-" + item.name.replace("_", "-")] if isinstance(declared_default(item), bool) else [])
        default = declared_default(item)
        if not isinstance(default, bool):
            shown = default if not isinstance(default, (list, tuple)) else default[0]
            assert f"{shown:g}" if isinstance(shown, float) else str(shown) in action.help % {}, item.name


def test_help_shows_the_defaults_it_parses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["defend", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--eps EPS the ε of Table III (the paper's 3 % and 5 %) (default 0.03,0.05)" in text
    assert "--n-images N_IMAGES images evaluated" in text and "(default: 1000)" in text


def test_a_study_is_built_on_every_setting_once():
    study = {item.name: item for item in dataclasses.fields(StudyConfig)}
    for cls in (TrainSettings, TransferSettings, DefenseSettings, SecuritySettings, SurrogateSettings):
        for item in dataclasses.fields(cls):
            assert item.name in study, item.name
            if item.name not in ("max_epochs", "eval_every", "batch_size"):  # the demo's own training length
                assert declared_default(study[item.name]) == declared_default(item), item.name
    assert len(study) == len(set(study))


def test_study_and_per_run_configs_agree():
    config = StudyConfig()
    assert TransferConfig().eps == tuple(config.eps) and len(config.eps) == 16
    assert SecurityConfig().security_eps == tuple(config.security_eps)
    assert DefenseConfig().defense_eps == tuple(config.defense_eps) == (0.03, 0.05)
    assert config.surrogate_counts() == {"ordinary": 2, "adaptive": 2, "adaptive_without_k": 1}


def test_bounds_are_declared_once_and_checked_both_ways(capsys):
    @dataclasses.dataclass
    class Example:
        count: int = option(3, "a count", low=1, high=5)

    check_bounds(Example())
    with pytest.raises(ValueError, match="count must be an integer in"):
        check_bounds(Example(count=9))
    with pytest.raises(ValueError, match="n_images must be an integer >= 1"):
        TransferConfig(n_images=0)
    for argv, message in [(["attack", "--source", "a.ckpt", "--n-images", "0"], "n_images must be an integer >= 1"),
                          (["security", "--target", "m", "--reference", "k", "--out", "o", "--adaptive", "101"],
                           "adaptive must be an integer in 0..100")]:  # fmt: skip
        with pytest.raises(SystemExit) as raised:  # at parse time, before anything is read
            cli.main(argv)
        assert raised.value.code == 2 and message in capsys.readouterr().err


def test_eps_grids():
    assert eps_grid("0:0.1:3") == pytest.approx((0.0, 0.05, 0.1))
    assert TransferConfig(eps=eps_grid("0.005:0.08:16")).eps == TransferConfig().eps  # the paper's, to the bit
    with pytest.raises(ValueError, match="start:stop:count"):
        eps_grid("0.1:0.05:3")
