"""Model specs: the strings that name a model to attack, defend, compare or train against.

A researcher's first question is how robust *their* model is, so every command that takes
a model (a target, source, baseline, surrogate or reference) takes any of:

``PATH``
    an orthocore checkpoint (``.ckpt`` or ``.safetensors``, :mod:`orthocore.checkpoint`);
``PATH.pt2``
    a ``torch.export`` program saved by ``torch.export.save``, exported with a dynamic
    batch dimension (``dynamic_shapes={"x": {0: torch.export.Dim("batch")}}``): attacks
    feed it batches of any size;
``torchvision:NAME:WEIGHTS``
    ``torchvision.models.get_model(NAME, num_classes=<the data's>)`` with the state dict
    in ``WEIGHTS``, e.g. ``torchvision:resnet18:weights.pth``;
``MODULE:FACTORY:WEIGHTS``
    ``MODULE.FACTORY()``, called with no arguments, with the state dict in ``WEIGHTS``,
    e.g. ``mypkg.nets:build:weights.pt``.

A ``WEIGHTS`` file is a state dict saved by ``torch.save`` (also inside a dict under
``"state_dict"``, as Lightning and orthocore checkpoints keep it; a DDP ``module.``
prefix on every key is dropped) or a ``.safetensors`` file.

Every model takes the data's images, :math:`(B, C, H, W)` in [0, 1], and returns
:math:`(B, K)` logits. A model trained on normalised inputs puts its normalisation in
front in its factory (:class:`orthocore.models.normalize.NormalizedModel`), as every
orthocore architecture does. The shape a model takes and its class count are checked
against the data before any work: an orthocore checkpoint and a ``.pt2`` program state
their input shape; every model's class count (and a factory's or torchvision model's input
shape) is found by one forward pass on two of the data's images.

No pickled code runs: weights load with ``torch.load(weights_only=True)`` or from
safetensors, and a ``.pt2`` archive is opened only once every part of it is known to load
that way (``torch.export.load`` would otherwise fall back to unpickling). The only code that
runs is the module the spec names.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from orthocore import models
from orthocore._io import atomic_write
from orthocore.checkpoint import load_model, read_checkpoint
from orthocore.checks import check_text
from orthocore.digests import file_digest, fingerprint

KINDS = ("checkpoint", "export", "torchvision", "factory")
_MODULE_PATH = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        text: the spec as given.
        kind: one of :data:`KINDS`.
        file: the file holding the weights (or the checkpoint, or the program).
        module: the module that builds the model: ``"torchvision"`` or a dotted module
            path; None for a checkpoint or a program.
        factory: the builder's name in ``module`` (a torchvision model name); or None.
    """

    text: str
    kind: str
    file: Path
    module: str | None = None
    factory: str | None = None


def parse_model_spec(text: str, name: str = "model") -> ModelSpec:
    """The spec ``text`` parsed (the file is not read).

    A path that exists is a file even when it has colons in it; ``A:B:REST`` is a
    factory or torchvision spec when ``A`` is a dotted module path and ``B`` a name.

    Examples:
        >>> parse_model_spec("torchvision:resnet18:w.pth").kind
        'torchvision'
        >>> spec = parse_model_spec("mypkg.nets:build:runs/w.pt")
        >>> spec.module, spec.factory, spec.file.as_posix()
        ('mypkg.nets', 'build', 'runs/w.pt')
        >>> parse_model_spec("runs/k/model.ckpt").kind
        'checkpoint'

    Raises:
        ArgumentTypeError: ``text`` is not a string.
        ValueError: a ``MODULE:FACTORY:WEIGHTS`` spec with an empty part.
    """
    check_text(text, name, "a model spec: a checkpoint, a .pt2 file, torchvision:NAME:WEIGHTS or MODULE:FACTORY:WEIGHTS")
    parts = text.split(":", 2)
    if len(parts) == 3 and _MODULE_PATH.match(parts[0]) and not os.path.exists(text):
        module, factory, weights = parts
        if not factory.isidentifier() or not weights:
            raise ValueError(f"{name}: {text!r} needs the form MODULE:FACTORY:WEIGHTS (a name and a weights file)")
        kind = "torchvision" if module == "torchvision" else "factory"
        return ModelSpec(text, kind, Path(weights), module, factory)
    return ModelSpec(text, "export" if text.endswith(".pt2") else "checkpoint", Path(text))


def spec_digest(text: str) -> str:
    """A short digest naming the model ``text`` gives: its file's bytes, and for a
    factory or torchvision spec also the builder's name (the weights alone do not say
    which architecture reads them). An orthocore checkpoint's digest is its file's.
    """
    spec = parse_model_spec(text)
    digest = file_digest(spec.file)
    return digest if spec.module is None else fingerprint(spec.module, spec.factory, digest)


def open_model(text: str, map_location: Any = "cpu", *, data=None, name: str = "model") -> nn.Module:
    """The model the spec ``text`` names, weights loaded, on ``map_location``, in eval mode.

    Args:
        text: a model spec (module docstring).
        map_location: the device the model goes to.
        data: the dataset the model is to be used on (``input_shape``, ``num_classes``
            and ``dataset[i] -> (image, label)``): the model is checked to take its
            images and to give one logit per class, before any work.
        name: the argument the spec was given as, for error messages.

    Returns:
        The model, in eval mode: an ``nn.Module`` mapping :math:`(B, C, H, W)` images in
        [0, 1] to :math:`(B, K)` logits.

    Raises:
        FileNotFoundError: the spec's file does not exist.
        ValueError: a module or factory that cannot be found, weights that do not fit
            the model or would run code to load, a program that is not a ``torch.export``
            archive or has a fixed batch size, or a model that does not fit ``data``.
    """
    spec = parse_model_spec(text, name)
    if not spec.file.is_file():
        named = f" (named in {text!r})" if spec.module else ""
        raise FileNotFoundError(f"{name}: no file at {str(spec.file)!r}{named}")
    if spec.kind == "checkpoint":
        return load_model(spec.file, map_location, data=data)
    if spec.kind == "export":
        model, stated = _exported_model(spec, name)
    else:
        model, stated = _built_model(spec, data, name), None
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    if data is not None:
        _check_fits(model, spec, data, stated, name)
    return model


def _built_model(spec: ModelSpec, data, name: str) -> nn.Module:
    """A factory's or torchvision's model with the spec's weights loaded (strictly)."""
    if spec.kind == "torchvision":
        try:
            from torchvision import models as torchvision_models
        except ImportError as error:
            raise ValueError(f"{name}: {spec.text!r} needs torchvision, which does not import ({error})") from None
        if spec.factory not in torchvision_models.list_models():
            raise ValueError(f"{name}: torchvision has no model {spec.factory!r} (torchvision.models.list_models())")
        # the data's class count, so that a model trained on it loads; its absence keeps torchvision's default
        options = {} if data is None else {"num_classes": int(data.num_classes)}
        model = torchvision_models.get_model(spec.factory, weights=None, **options)
        built = f"torchvision's {spec.factory}" + (f" with {options['num_classes']} classes" if options else "")
    else:
        model, built = _factory_model(spec, name), f"{spec.module}.{spec.factory}()"
    state = _read_weights(spec.file, name)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:400]
        raise ValueError(f"{name}: the weights in {str(spec.file)!r} do not fit {built}: {detail}") from None
    return model


def _factory_model(spec: ModelSpec, name: str) -> nn.Module:
    try:
        module = importlib.import_module(spec.module)
    except ImportError as error:
        raise ValueError(f"{name}: cannot import module {spec.module!r} named in {spec.text!r} ({error})") from None
    factory = getattr(module, spec.factory, None)
    if not callable(factory):
        raise ValueError(f"{name}: module {spec.module!r} has no factory {spec.factory!r} (named in {spec.text!r})")
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{name}: {spec.module}.{spec.factory}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _read_weights(path: Path, name: str) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (module docstring), loaded without running code."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{name}: {str(path)!r} is not a readable safetensors file ({error})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        # torch's message would suggest weights_only=False, which runs the file's code: never do that.
        reason = " ".join(str(error).split())
        refused = "weights_only" in reason or "Unsupported" in reason
        detail = "holds objects that only loading code could build" if refused else f"is not readable ({reason[:200]})"
        raise ValueError(f"{name}: {str(path)!r} {detail}; a weights file holds a state dict of tensors") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()) or not state:
        raise ValueError(f"{name}: {str(path)!r} does not hold a state dict (names to tensors)")
    if all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


class ExportedModel(nn.Module):
    """A ``torch.export`` program as a module. Its graph is fixed at export (batch norm
    and dropout as they were exported, normally in eval mode): ``train()`` and ``eval()``
    set only this wrapper's flag, since the program's own module refuses them.

    Shape:
        - Input: :math:`(B, C, H, W)`.
        - Output: the program's output, :math:`(B, K)` logits.
    """

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        super().__init__()
        self.program = program.module()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)

    def train(self, mode: bool = True) -> ExportedModel:
        self.training = mode
        return self


def _exported_model(spec: ModelSpec, name: str) -> tuple[ExportedModel, tuple[int, ...]]:
    """The ``.pt2`` program as a module, and the image shape it was exported for (-1 for
    a dynamic size), after checking its batch dimension is dynamic: attacks feed batches
    of every size."""
    _check_archive_loads_without_code(spec.file, name)
    try:
        program = torch.export.load(spec.file)
    except Exception as error:  # torch raises many types for a damaged archive
        raise ValueError(f"{name}: {str(spec.file)!r} is not a torch.export program ({error})") from None
    inputs = program.graph_signature.user_inputs
    if len(inputs) != 1:
        raise ValueError(f"{name}: the program in {str(spec.file)!r} takes {len(inputs)} inputs; a classifier takes one")
    node = next(node for node in program.graph.nodes if node.op == "placeholder" and node.name == inputs[0])
    shape = node.meta["val"].shape
    if isinstance(shape[0], int):
        raise ValueError(
            f"{name}: the program in {str(spec.file)!r} was exported for batches of exactly {shape[0]}; export it "
            "with dynamic_shapes={'x': {0: torch.export.Dim('batch')}} so that it takes batches of any size"
        )
    return ExportedModel(program), tuple(size if isinstance(size, int) else -1 for size in shape[1:])


def export_program(checkpoint: str | os.PathLike, out: str | os.PathLike) -> None:
    """Writes the orthocore checkpoint ``checkpoint`` as a ``torch.export`` program, atomically:
    a ``.pt2`` file that ``torch.export.load`` (and :func:`open_model`) runs without
    orthocore's model code, taking batches of any size.

    Raises:
        ValueError: ``out`` does not end in ``.pt2``, or the checkpoint is unreadable.
    """
    if not str(out).endswith(".pt2"):
        raise ValueError(f"export: out must end in .pt2, got {str(out)!r}")
    shape = models.spec(read_checkpoint(checkpoint)["arch"]).input_shape
    model = load_model(checkpoint)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.rand(2, *shape),), dynamic_shapes=({0: batch},))
    with warnings.catch_warnings():  # torch's note on buffers that are views (Normalize's mean and std), harmless on CPU
        warnings.filterwarnings("ignore", message="No complete tensor found")
        atomic_write(out, lambda file: torch.export.save(program, file))


def _check_archive_loads_without_code(path: Path, name: str) -> None:
    """Refuses a ``.pt2`` archive any part of which ``torch.export.load`` would unpickle:
    pickled weights or constants, custom or opaque objects, sample inputs that
    ``weights_only`` refuses, or the legacy format (read by unpickling)."""
    from torch.export.pt2_archive import constants as archive

    try:
        with zipfile.ZipFile(path) as file:
            members = {member.split("/", 1)[1]: member for member in file.namelist() if "/" in member}
            if archive.ARCHIVE_FORMAT_PATH not in members:
                raise ValueError(f"{name}: {str(path)!r} is not a torch.export.save archive of this torch version")
            unsafe = []
            for inner, member in members.items():
                if inner.endswith("_config.json") and inner.startswith((archive.WEIGHTS_DIR, archive.CONSTANTS_DIR)):
                    for fqn, payload in json.loads(file.read(member)).get("config", {}).items():
                        tensor = payload.get("path_name", "").startswith(
                            (archive.WEIGHT_FILENAME_PREFIX, archive.TENSOR_CONSTANT_FILENAME_PREFIX))  # fmt: skip
                        if payload.get("use_pickle") or not tensor:
                            unsafe.append(fqn)
                elif inner.startswith(archive.CONSTANTS_DIR) and inner.endswith(".pt"):
                    unsafe.append(inner)  # legacy pickled constants
                elif inner.startswith(archive.SAMPLE_INPUTS_DIR):
                    try:
                        torch.load(io.BytesIO(file.read(member)), weights_only=True)
                    except (RuntimeError, pickle.UnpicklingError, EOFError):
                        unsafe.append(inner)
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"{name}: {str(path)!r} is not a readable torch.export archive ({error})") from None
    if unsafe:
        raise ValueError(f"{name}: {str(path)!r} holds parts that only unpickling (running code) reads: "
                         f"{', '.join(unsafe[:5])}; export a program of tensors only")  # fmt: skip


def _check_fits(model: nn.Module, spec: ModelSpec, data, stated: tuple[int, ...] | None, name: str) -> None:
    """The model takes the data's images and gives one logit per class: from its stated
    input shape, then one forward pass on two of the data's images."""
    shape, classes = tuple(data.input_shape), int(data.num_classes)
    if stated is not None and (len(stated) != len(shape) or any(s not in (-1, d) for s, d in zip(stated, shape))):
        raise ValueError(f"{name}: {spec.text!r} takes images of shape {stated}, but the data has images of shape {shape}")
    parameter = next(iter(model.parameters()), None)
    images = torch.stack([data[index][0] for index in range(min(2, len(data)))]) if len(data) else torch.zeros(2, *shape)
    images = images.to(parameter.device if parameter is not None else "cpu")
    try:
        with torch.no_grad():
            logits = model(images)
    except Exception as error:  # a model's own code may raise anything on a wrong shape
        detail = " ".join(str(error).split())[:300]
        raise ValueError(f"{name}: {spec.text!r} fails on the data's images of shape {shape} ({detail})") from None
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (images.shape[0], classes):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name}: {spec.text!r} gives {got} on a batch of {images.shape[0]} images of shape {shape}, "
                         f"but the data has {classes} classes: expected ({images.shape[0]}, {classes})")  # fmt: skip
