"""The one loop every attack runs: many ε in one batched pass over ``E·B`` images.

Rows are laid out ε-major (row ``e·B + b`` is image ``b`` at ``eps[e]``) and cut into
chunks that fit in memory; each chunk runs all its steps, and every step is one forward
and backward pass of the model plus one fused :func:`orthocore.ops.attack_step`. All
random draws (random start, input diversity) are made per image before the loop, shared
by every ε, so a sweep equals running each ε on its own with the same generator, however
it is chunked. Without a random start every ε starts at the clean image, so the first
gradient does not depend on ε: it is computed once on the ``B`` images (for FGSM that is
the only gradient; for a 10-step attack it saves a tenth of the passes over ``E·B``).

A randomized model (a defense that draws a fresh transformation per call) sees every
row under a draw key (:mod:`orthocore.draws`: the generator's seed, the restart, the
step, the image and the draw), so its draws do not depend on chunking either. With
``eot = n`` (Expectation over Transformation, Athalye et al. 2018) each step's gradient
is the mean of the gradients under ``n`` draws, taken in one pass over ``n`` copies of
the rows, and a row counts as fooled when the mean of its ``n`` draws' logits fools.

A **monotone** sweep (``monotone=True``, for worst-case evaluations) attacks the ε in
increasing order instead: a perturbation that fools at ε_i lies in every larger ball, so
an image fooled at ε_i is counted fooled at every larger ε with that perturbation and is
not attacked again. Every other image is attacked at ε_j exactly as the independent
sweep attacks it there (the generator is rewound to the same state, so the random
starts and restarts are the same draws): the monotone sweep fools every image the
independent one fools, and those of the smaller ε besides, and skips their work.
Starting the larger ε from the smaller one's last point instead (its perturbation kept,
or scaled up to the new radius) was measured and fooled fewer images than a fresh start
(on the digits demo's model at ε = 0.1: 39.1–39.8 % against 40.6 % of 128 images), so
each ε keeps its own start. Its result at ε_j is not what a run of ε_j alone gives, so
the paper's per-ε figures keep the independent sweep.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orthocore import checks, draws
from orthocore.attacks import _memory
from orthocore.attacks.diversity import DiversityPlan, apply_diversity
from orthocore.metrics import logit_margin
from orthocore.modes import eval_mode
from orthocore.ops import attack_step

NORM_ALIASES = {"inf": "inf", "linf": "inf", "2": "2", "2.0": "2", "l2": "2"}


def norm_name(norm: str | float) -> str:
    """``"inf"`` or ``"2"`` from any accepted spelling (``"linf"``, ``"l2"``, ``inf``, ``2``)."""
    key = str(norm).lower()
    if key not in NORM_ALIASES:
        raise ValueError(f"norm must be one of 'inf', 'linf', '2', 'l2'; got {norm!r}")
    return NORM_ALIASES[key]


def eps_values(eps: float | Sequence[float] | Tensor) -> tuple[tuple[float, ...], bool]:
    """The radii as floats (each a finite number >= 0, a fraction of the [0, 1] range),
    and whether a list was given (the result then gets an ε axis)."""
    if isinstance(eps, Tensor) and eps.dim() == 0:
        eps = eps.item()
    if isinstance(eps, (Sequence, Tensor)) and not isinstance(eps, (str, bytes)):
        return checks.check_number_list(eps, "eps", low=0), True
    return (checks.check_number(eps, "eps", low=0),), False


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """What distinguishes one attack from another; see the attack classes for meanings.

    ``step_size`` is absolute when given; ``None`` means ``step_scale · ε / steps``.
    ``decay`` is ``None`` for no momentum. ``restarts`` runs the attack up to that many
    times with fresh random draws, each later run only on the (image, ε) rows no earlier
    run fooled, and keeps per row the run with the lowest margin. ``stop_when_fooled``
    freezes a row at the first iterate that fools (its forward pass shows it), as
    success-rate evaluations do: a row can then never end unfooled after fooling once,
    and its remaining steps are not computed.
    """

    norm: str = "inf"
    steps: int = 10
    step_size: float | None = None
    step_scale: float = 1.0
    decay: float | None = None
    random_start: bool = False
    diversity_prob: float = 0.0
    resize_rate: float = 0.9
    targeted: bool = False
    restarts: int = 1
    stop_when_fooled: bool = False
    eot: int = 1
    monotone: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", norm_name(self.norm))
        checks.check_number(self.steps, "steps", low=1, integer=True)
        if self.step_size is not None:
            checks.check_number(self.step_size, "step_size", low=0)
        checks.check_number(self.step_scale, "step_scale", low=0)
        if self.decay is not None:
            checks.check_number(self.decay, "decay", low=0)
        checks.check_number(self.diversity_prob, "diversity_prob", low=0, high=1)
        checks.check_number(self.resize_rate, "resize_rate", low=1e-3, high=1)
        checks.check_number(self.restarts, "restarts", low=1, integer=True)
        checks.check_number(self.eot, "eot", low=1, integer=True)
        checks.check_bool(self.monotone, "monotone")
        if self.restarts > 1 and not (self.random_start or self.diversity_prob > 0):
            raise ValueError("restarts > 1 needs a random start or input diversity: every restart would be the same")
        checks.check_bool(self.stop_when_fooled, "stop_when_fooled")
        if self.stop_when_fooled and self.diversity_prob > 0:
            raise ValueError("stop_when_fooled needs diversity_prob = 0: the logits of a diversified input "
                             "do not say whether the image itself fools")

    def step_for(self, eps: float) -> float:
        """The step size used at radius ``eps``."""
        return self.step_size if self.step_size is not None else self.step_scale * eps / self.steps

    @property
    def first_gradient_shared_across_eps(self) -> bool:
        """True when every ε takes its first gradient at the clean image (no random start;
        input diversity is drawn per image, so it is the same for every ε)."""
        return not self.random_start


@contextlib.contextmanager
def _attack_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (batch-norm statistics, dropout off) and no parameter gradients while
    attacking — autograd then keeps only what the input gradient needs; both restored."""
    grads = [(p, p.requires_grad) for p in model.parameters()] if isinstance(model, nn.Module) else []
    with eval_mode(model):
        for p, _ in grads:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in grads:
                p.requires_grad_(flag)


def _random_start(images: Tensor, norm: str, generator: torch.Generator | None) -> Tensor:
    """Unit-radius random offsets per image :math:`(B, C, H, W)`, to be scaled by ε:
    uniform in the L∞ cube, or uniform radius times a uniform direction for L2."""
    shape = images.shape
    if norm == "inf":
        offsets = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
    else:
        direction = torch.randn(shape, generator=generator, dtype=torch.float64).flatten(1)  # (B, D)
        radius = torch.rand((shape[0], 1), generator=generator, dtype=torch.float64)
        offsets = (direction / direction.norm(dim=1, keepdim=True) * radius).view(shape)
    return offsets.to(device=images.device, dtype=images.dtype)


@dataclasses.dataclass(frozen=True)
class _Draws:
    """What keys a randomized model's draws in one run of an attack: the seed of its
    generator (each evaluation batch re-seeds it) and the run (the restart, and a
    monotone sweep's stage)."""

    seed: int
    run: int

    def keys(self, images: Tensor, step: int, copies: int = 1) -> Tensor:
        """Keys of ``copies`` draws of the rows showing ``images`` :math:`(n,)` (CPU),
        draw-major: :math:`(copies · n,)`."""
        draw = torch.arange(copies).repeat_interleave(len(images))
        return draws.row_keys(self.seed, images.repeat(copies), step, self.run, draw)


def _input_gradient(model, x: Tensor, labels: Tensor, settings: LoopSettings, plan: DiversityPlan | None, step: int,
                    images: Tensor, keys: _Draws) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Gradient at ``x`` :math:`(n, ...)` of the summed cross-entropy (negated when
    targeted), averaged over ``settings.eot`` draws, and whether each row already fools
    (from the same forward pass; the draws' mean logits) :math:`(n,)`. ``images``:
    :math:`(n,)` CPU image index of each row."""
    copies = settings.eot
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        inputs = apply_diversity(x, plan.rows(step, images)) if plan is not None else x
        if copies > 1:
            inputs = inputs.repeat(copies, *([1] * (x.dim() - 1)))  # (copies·n, ...)
        with draws.keyed(lambda: keys.keys(images, step, copies)):
            logits = model(inputs)
        loss = F.cross_entropy(logits, labels.repeat(copies), reduction="sum") / copies
        (grad,) = torch.autograd.grad(-loss if settings.targeted else loss, x)
    logits = logits.detach().view(copies, len(x), -1).mean(0)
    return grad, logit_margin(logits, labels, targeted=settings.targeted) < 0


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """The rows one chunk attacks, ``n`` of them, each an (image, ε) pair."""

    clean: Tensor  # (n, C, H, W) clean images
    labels: Tensor  # (n,)
    eps: Tensor  # (n,) radius of each row
    step: Tensor  # (n,) step size of each row
    images: Tensor  # (n,) CPU int64: each row's image index (the diversity plan is drawn per image)
    start: Tensor | None  # (n, C, H, W) unit random offsets, or None without a random start
    first_grad: Tensor | None  # (n, C, H, W) first-step gradient when it was taken once for all ε


def _run_chunk(model, chunk: _Chunk, settings: LoopSettings, plan: DiversityPlan | None, keys: _Draws) -> Tensor:
    """All steps for one chunk: the adversarial rows :math:`(n, C, H, W)`."""
    adv = chunk.clean
    if chunk.start is not None:
        adv = (chunk.clean + chunk.start * chunk.eps.to(adv.dtype)[:, None, None, None]).clamp(0, 1)
    momentum = torch.zeros_like(chunk.clean) if settings.decay is not None else None
    if settings.stop_when_fooled:
        return _run_until_fooled(model, chunk, settings, adv, momentum, keys)
    for t in range(settings.steps):
        if t == 0 and chunk.first_grad is not None:
            grad = chunk.first_grad
        else:
            grad, _ = _input_gradient(model, adv, chunk.labels, settings, plan, t, chunk.images, keys)
        adv, momentum = attack_step(
            adv, grad, chunk.clean, chunk.step, chunk.eps, norm=settings.norm, momentum=momentum,
            decay=settings.decay or 0.0,
        )  # fmt: skip
    return adv


def _run_until_fooled(model, chunk: _Chunk, settings: LoopSettings, adv: Tensor, momentum: Tensor | None,
                      keys: _Draws) -> Tensor:  # fmt: skip
    """:func:`_run_chunk` with ``stop_when_fooled`` (no input diversity): only the rows
    not yet fooled take each step."""
    adv = adv.clone()
    active = torch.arange(len(adv), device=adv.device)
    for t in range(settings.steps):
        images = chunk.images[active.cpu()]
        grad, fooled = _input_gradient(model, adv[active], chunk.labels[active], settings, None, t, images, keys)
        active, grad = active[~fooled], grad[~fooled]
        if len(active) == 0:
            break
        stepped, moved = attack_step(
            adv[active], grad, chunk.clean[active], chunk.step[active], chunk.eps[active], norm=settings.norm,
            momentum=None if momentum is None else momentum[active], decay=settings.decay or 0.0,
        )  # fmt: skip
        adv[active] = stepped
        if momentum is not None:
            momentum[active] = moved
    return adv


def check_attack_arguments(model, images: Tensor, labels: Tensor, eps, max_batch: int | None):
    """The checks every attack (gradient or query) makes before any work.

    Returns:
        ``(eps values, whether a list was given, labels as int64 on the images' device)``.
    """
    values, is_list = eps_values(eps)
    checks.check_images(images, "images", empty=False)
    checks.check_labels(labels, images.shape[0])
    checks.check_model(model, like=images)
    if max_batch is not None:
        checks.check_number(max_batch, "max_batch", low=1, integer=True)
    return values, is_list, labels.to(images.device, torch.int64)


def run_attack(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    eps,
    settings: LoopSettings,
    *,
    generator: torch.Generator | None = None,
    max_batch: int | None = None,
) -> Tensor:
    """Runs an attack at one or many ε; every argument is checked before any work.

    Args:
        model: maps :math:`(n, C, H, W)` images in [0, 1] to :math:`(n, K)` logits.
        images: :math:`(B, C, H, W)` clean images, range [0, 1].
        labels: :math:`(B,)` true labels (untargeted) or target labels (targeted).
        eps: a radius, or a list of ``E`` radii (fractions of the [0, 1] range).
        settings: the attack's :class:`LoopSettings`.
        generator: CPU generator for the random start and input diversity (default: torch's).
        max_batch: most images per forward pass; default: what fits in free memory.

    Returns:
        :math:`(B, C, H, W)` for a single ε, :math:`(E, B, C, H, W)` for a list.
    """
    values, is_list, labels = check_attack_arguments(model, images, labels, eps, max_batch)
    with _attack_mode(model):
        logits, saved_per_row = _memory.saved_bytes_per_row(model, images)
        if logits is not None:
            checks.check_logits(logits, labels)
        else:  # no probe ran: the attack's first forward pass checks the labels
            model = _checking_first_logits(model, labels)
        adv = _sweep(model, images, labels, values, settings, generator, max_batch, saved_per_row)
    return adv if is_list else adv[0]


def _checking_first_logits(model, labels: Tensor):
    """``model``, whose first call checks its logits against all ``labels`` :math:`(B,)`
    (before the caller's backward pass)."""
    pending = True

    def forward(inputs: Tensor) -> Tensor:
        nonlocal pending
        logits = model(inputs)
        if pending:
            checks.check_logits(logits, labels)
            pending = False
        return logits

    return forward


def _margins(model, x: Tensor, labels: Tensor, images: Tensor, settings: LoopSettings, chunk: int,
             keys: _Draws) -> Tensor:  # fmt: skip
    """Per row of ``x`` :math:`(n, C, H, W)` (showing ``images``, CPU): the true logit
    minus the largest other (targeted: the largest other minus the target's), under a
    draw of its own after the last step; below 0 the row fools."""
    logits = []
    with torch.no_grad():
        for rows in _chunks(len(x), chunk):
            with draws.keyed(lambda rows=rows: keys.keys(images[rows], settings.steps)):
                logits.append(model(x[rows]))
    return logit_margin(torch.cat(logits), labels, targeted=settings.targeted)


def _sweep(model, images, labels, values, settings, generator, max_batch, saved_per_row,
           rows: Tensor | None = None, stage: int = 0) -> Tensor:  # fmt: skip
    """All ε at once, the best of ``settings.restarts`` runs: :math:`(E, B, C, H, W)`.

    Each later run attacks only the (image, ε) rows that no earlier run fooled (as
    autoattack's restarts do), and a row keeps the run with its lowest margin — so a row
    once fooled stays fooled, and the draws of every run are made for all images, so
    which rows a run attacks never changes the draws of the next. ``rows`` (CPU indices
    into the ε-major :math:`E·B` rows, default all): the rows to attack, the others left
    clean; ``stage``: a monotone sweep's stage, for the draw keys."""
    if settings.monotone and len(values) > 1:
        return _monotone_sweep(model, images, labels, values, settings, generator, max_batch, saved_per_row)
    rows = torch.arange(len(values) * images.shape[0]) if rows is None else rows  # CPU: the rows still to attack
    seed = generator.initial_seed() if generator is not None else 0
    best = images.repeat(len(values), *([1] * (images.dim() - 1)))  # rows never attacked stay clean
    best_margin = torch.full((len(best),), float("-inf"), device=images.device)  # -inf: not to attack
    best_margin[rows.to(images.device)] = float("inf")
    for restart in range(settings.restarts):
        keys = _Draws(seed, stage * settings.restarts + restart)
        out, chunk = _one_sweep(model, images, labels, values, settings, generator, max_batch, saved_per_row, rows,
                                keys)  # fmt: skip
        device_rows = rows.to(images.device)
        if settings.restarts == 1:
            best[device_rows] = out
            break
        image_of_row = torch.arange(images.shape[0]).repeat(len(values))[rows]
        margin = _margins(model, out, labels.repeat(len(values))[device_rows], image_of_row, settings, chunk, keys)
        better = margin < best_margin[device_rows]
        best[device_rows[better]] = out[better]
        best_margin[device_rows] = torch.minimum(margin, best_margin[device_rows])
        rows = torch.nonzero(best_margin >= 0).flatten().cpu()
        if len(rows) == 0:
            break
    return best.view(len(values), *images.shape)


def _monotone_sweep(model, images, labels, values, settings, generator, max_batch, saved_per_row) -> Tensor:
    """The ε in increasing order (:class:`LoopSettings` ``monotone``): :math:`(E, B, C, H, W)`.

    At each ε the images not fooled so far are attacked with the whole budget, from the
    generator state the sweep began with (the independent sweep's draws); an image fooled
    at a smaller ε keeps that point (it lies in the larger ball). Whether a point fools
    is read from one forward pass of it (under a draw of its own for a randomized model)."""
    batch = images.shape[0]
    out = torch.empty((len(values), *images.shape), dtype=images.dtype, device=images.device)
    fooled = torch.zeros(batch, dtype=torch.bool, device=images.device)
    seed = generator.initial_seed() if generator is not None else 0
    state = generator.get_state() if generator is not None else None
    last = None
    every_image = torch.arange(batch)
    for stage, e in enumerate(sorted(range(len(values)), key=values.__getitem__)):
        todo = torch.nonzero(~fooled).flatten().cpu()
        point = images.clone() if last is None else last.clone()
        if len(todo):
            if state is not None:
                generator.set_state(state)
            attacked = _sweep(model, images, labels, (values[e],), settings, generator, max_batch, saved_per_row,
                              todo, stage)[0]  # fmt: skip
            device_todo = todo.to(images.device)
            point[device_todo] = attacked[device_todo]
            chunk = max_batch or _memory.forward_rows(saved_per_row, len(todo), images.device)
            after = _Draws(seed, (stage + 1) * settings.restarts)
            margin = _margins(model, point[device_todo], labels[device_todo], every_image[todo], settings, chunk, after)
            fooled[device_todo] = margin < 0
        out[e] = point
        last = point
    return out


def _one_sweep(model, images, labels, values, settings, generator, max_batch, saved_per_row, rows: Tensor,
               keys: _Draws) -> tuple[Tensor, int]:  # fmt: skip
    """One run over the chosen (image, ε) ``rows`` (CPU indices into the ε-major
    :math:`E·B` rows): their adversarial images :math:`(n, C, H, W)`, and the rows per
    chunk (each row passes the model ``settings.eot`` times). The run's random draws are
    made for every image whichever rows it attacks."""
    batch, count = images.shape[0], len(values)
    acc = torch.float64 if images.dtype == torch.float64 else torch.float32
    device_rows = rows.to(images.device)
    eps_rows = torch.tensor(values, dtype=acc, device=images.device).repeat_interleave(batch)[device_rows]  # (n,)
    step_rows = torch.tensor([settings.step_for(e) for e in values], dtype=acc, device=images.device)
    step_rows = step_rows.repeat_interleave(batch)[device_rows]  # (n,)
    image_bytes = images[0].numel() * images.element_size()
    if max_batch is not None:  # each row passes the model `eot` times
        chunk = max(1, max_batch // settings.eot)
    else:
        chunk = _memory.rows_per_chunk(saved_per_row * settings.eot, image_bytes, count * batch, images.device)
    start = _random_start(images, settings.norm, generator) if settings.random_start else None
    plan = None
    if settings.diversity_prob > 0:
        size = tuple(images.shape[-2:])
        plan = DiversityPlan.draw(settings.steps, batch, size, settings.diversity_prob, settings.resize_rate, generator)
    image_of_row = torch.arange(batch).repeat(count)[rows]  # (n,) CPU
    first_grad = None  # (B, C, H, W) when shared
    if settings.first_gradient_shared_across_eps and not settings.stop_when_fooled:
        every_image = torch.arange(batch)
        first_grad = torch.cat([
            _input_gradient(model, images[part], labels[part], settings, plan, 0, every_image[part], keys)[0]
            for part in _chunks(batch, chunk)
        ])  # fmt: skip
    out = torch.empty((len(rows), *images.shape[1:]), dtype=images.dtype, device=images.device)
    for part in _chunks(len(rows), chunk):
        index = image_of_row[part]
        device_index = index.to(images.device)
        chunk_rows = _Chunk(
            clean=images[device_index], labels=labels[device_index], eps=eps_rows[part], step=step_rows[part],
            images=index, start=None if start is None else start[device_index],
            first_grad=None if first_grad is None else first_grad[device_index],
        )  # fmt: skip
        out[part] = _run_chunk(model, chunk_rows, settings, plan, keys)
    return out, chunk


def _chunks(total: int, size: int) -> Iterator[slice]:
    for begin in range(0, total, size):
        yield slice(begin, min(total, begin + size))
