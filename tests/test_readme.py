"""Every shell command the README and docs/ show runs as written, in order (the README
first, then docs/ by file name), in a temporary folder; the README's Python blocks run
too.

The ``bash`` blocks are read from the files themselves, so a command added there is run
here. Two things are scaled down, and only these:

- the data: ``cifar10:DIR`` and the TOML's ``data`` become a tiny generated CIFAR-10
  python-batches folder (40 training and 8 validation images of one class, so a model
  trained for a few epochs answers every image and the evaluations have images to attack);
- the budget: the options in ``BUDGET`` are appended to the commands that take them,
  and the TOML's budget keys (epochs, images, seeds, attack steps and ε grids) are
  overridden, so the whole README runs in about four minutes on two cores.

One file is provided: the user's own ``my_resnet18.pth``, a torchvision resnet18 state
dict for 10 classes that answers the tiny folder's class whatever it sees.

The set-up commands (``make``, ``pip install``) are not run: they are what CI itself runs
(``.ci/run`` calls ``make test``, whose set-up is the same ``pip install``), and
``test_setup_commands_are_the_known_ones`` fails when one is added, so it is seen here.
"""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]  # the order their commands run in
ORTHOCORE = Path(sys.executable).with_name("orthocore")

SET_UP = [["make", "demo"], ["make", "test"], ["pip", "install", "torch==2.14.1", "ninja"],
          ["pip", "install", "--no-build-isolation", "."]]  # fmt: skip

BUDGET = {
    "train": ["--max-epochs", "6", "--batch-size", "8", "--no-progress"],
    "attack": ["--n-images", "8", "--no-progress"],
    "defend": ["--n-images", "8", "--no-progress"],
    "security": ["--n-images", "8", "--epochs", "3", "--white-box-steps", "2", "--restarts", "1",
                 "--square-queries", "4", "--no-progress"],  # fmt: skip
    "run": ["--no-progress"],
}
STUDY_BUDGET = {"max_epochs": 6, "eval_every": 6, "batch_size": 8, "n_images": 8, "seeds": [0], "gradcam_images": 2,
                "white_box_steps": 2, "restarts": 1, "square_queries": 4, "surrogates": 0, "adaptive": 1,
                "eps": [0.03, 0.05], "security_eps": [0.05, 0.08]}  # fmt: skip


def blocks(language: str, documents=DOCUMENTS) -> list[str]:
    """The fenced code blocks in ``language`` of ``documents``, in order."""
    return [block for document in documents
            for block in re.findall(rf"^```{language}\n(.*?)^```", document.read_text(), flags=re.MULTILINE | re.DOTALL)]


def commands() -> list[list[str]]:
    """Every command of the README's and docs/' bash blocks as an argv list
    (continuation lines joined, comments dropped)."""
    found = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if argv := shlex.split(line, comments=True):
                found.append(argv)
    return found


def write_study_toml(path: Path, cifar: Path) -> None:
    """The study TOML block (docs/study.md) with its data on the tiny folder and a small budget."""
    (text,) = blocks("toml")
    config = tomllib.loads(text) | STUDY_BUDGET | {"data": f"cifar10:{cifar}"}
    path.write_text("".join(f"{key} = {_toml_value(value)}\n" for key, value in config.items()))


def _toml_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_setup_commands_are_the_known_ones():
    assert [argv for argv in commands() if argv[0] not in ("orthocore", "torchrun")] == SET_UP


def as_run(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(subcommand, argv to run)`` for an ``orthocore ...`` or ``torchrun ... -m orthocore
    ...`` line of the README (torchrun through this interpreter's ``torch.distributed.run``),
    None for a set-up command."""
    if argv[0] == "orthocore":
        return argv[1], [str(ORTHOCORE), *argv[1:]]
    if argv[0] == "torchrun":
        module = argv.index("-m")
        assert argv[module + 1] == "orthocore", argv
        return argv[module + 2], [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    return None


def write_users_resnet18(path: Path, label: int) -> None:
    """A torchvision resnet18 state dict (10 classes) that answers ``label`` whatever it sees."""
    import torch
    from torchvision.models import get_model

    model = get_model("resnet18", num_classes=10)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(10 * torch.nn.functional.one_hot(torch.tensor(label), 10))
    torch.save(model.state_dict(), path)


def test_every_readme_command_runs_as_written(tmp_path, cifar10_folder):
    cifar = cifar10_folder()
    write_users_resnet18(tmp_path / "my_resnet18.pth", label=3)  # the tiny folder's one class
    write_study_toml(tmp_path / "study.toml", cifar)
    assert ORTHOCORE.is_file(), f"the orthocore console script is missing beside {sys.executable}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ran = []
    for argv in commands():
        if (runnable := as_run(argv)) is None:
            continue
        command, run = runnable
        run = [arg.replace("cifar10:DIR", f"cifar10:{cifar}") for arg in run] + BUDGET.get(command, [])
        result = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{shlex.join(argv)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        ran.append(f"{argv[0]} {command}" if argv[0] == "torchrun" else command)
    assert ran.count("train") >= 4 and {"run", "similarity", "attack", "defend", "security", "report", "torchrun train"} <= set(ran)
    for made in ("runs/k/model.ckpt", "runs/m/model.ckpt", "runs/transfer.csv", "runs/table3.md",
                 "runs/security/security.json", "runs/cifar-resnet20/report.html", "runs/m/model.safetensors",
                 "runs/m/model.pt2", "runs/yours.json"):
        assert (tmp_path / made).is_file(), made


def test_the_readme_python_runs(tmp_path):
    """The README's Python blocks, run as a script in a temporary folder."""
    (code,) = blocks("python", [README])
    script = tmp_path / "readme.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SimilarityRow(accuracy=" in result.stdout and (tmp_path / "runs/api-m/model.ckpt").is_file()
