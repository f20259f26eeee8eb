"""Square Attack (Andriushchenko et al., "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020): gradient-free, forward passes only.

Random search over square-shaped updates of the perturbation, accepted when they lower
the margin loss, with the square's side shrinking on the paper's ``p_init`` schedule.
L∞ and L2 follow autoattack's ``SquareAttack`` (which torchattacks ports). Differences,
each deliberate:

* **Batched over ε.** A list of ``E`` radii runs as ``E·B`` rows in one random search.
  Every random draw is made per *image* (shared by its ε rows) or per iteration, in a
  fixed order, so a sweep equals each ε run alone with the same generator.
* **Budget.** ``n_queries`` is the most forward passes per image, all counted: the clean
  check, the initialisation and every step (autoattack does not count the clean check
  and runs ``n_queries`` steps after the initialisation).
* **Windows** are placed anywhere in the image (``0 <= v <= H − s``); autoattack's draw
  never reaches the last row or column.
* **Draws** come from the ``generator`` (CPU), not from torch's global state.
* **Failed searches** return their best point (the lowest loss found), not the clean
  image as autoattack and torchattacks do: a perturbation that did not fool the model it
  was searched on may still fool another (transfer), and the evaluation counts it there.

An image is left as it is once it is misclassified (targeted: classified as the target):
its clean check already succeeded, or a later query did (per-image early stop).

``monotone=True`` (a worst-case sweep, as in :mod:`orthocore.attacks._loop`) searches the
ε in increasing order: an image fooled at a smaller ε keeps that point at the larger ones
and takes no more queries there, and every other image is searched exactly as the
independent sweep searches it (the generator rewound: the same squares and signs), so
the monotone sweep fools every image the independent one fools, and skips the work of
those fooled at a smaller ε. ``queries`` counts what was made.

A randomized model answers each query under a draw of its own, keyed by the generator's
seed, the query's number, the image and its ε (:mod:`orthocore.draws`): the attacker
queries the deployed defense, a fresh transformation each time.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orthocore import checks, draws
from orthocore.attacks import _memory
from orthocore.attacks._loop import check_attack_arguments, norm_name
from orthocore.attacks.base import Attack
from orthocore.metrics import logit_margin
from orthocore.modes import eval_mode

LOSSES = ("margin", "ce")


@dataclasses.dataclass(frozen=True)
class SquareSettings:
    """See :class:`Square` for the meanings."""

    norm: str = "inf"
    n_queries: int = 5000
    p_init: float = 0.8
    loss: str = "margin"
    targeted: bool = False
    monotone: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", norm_name(self.norm))
        checks.check_number(self.n_queries, "n_queries", low=2, integer=True)  # the clean check and one try
        checks.check_number(self.p_init, "p_init", low=0, high=1, low_open=True)
        checks.check_choice(self.loss, "loss", LOSSES)
        checks.check_bool(self.targeted, "targeted")
        checks.check_bool(self.monotone, "monotone")

    def fraction(self, step: int) -> float:
        """The share ``p`` of the image a square covers at ``step`` (autoattack's schedule,
        rescaled to a budget of 10,000 queries)."""
        it = int(step / self.n_queries * 10000)
        for bound, divisor in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64),
                               (6000, 128), (8000, 256)):  # fmt: skip
            if it <= bound:
                return self.p_init / divisor
        return self.p_init / 512


def _margin_and_loss(logits: Tensor, labels: Tensor, settings: SquareSettings) -> tuple[Tensor, Tensor]:
    """Per row: the margin (<= 0 means success) and the loss the search lowers."""
    margin = logit_margin(logits, labels, targeted=settings.targeted)
    if settings.loss == "margin":
        return margin, margin
    ce = F.cross_entropy(logits, labels, reduction="none")
    return margin, (ce if settings.targeted else -ce)


def _signs(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """Uniform ±1 of ``shape`` (CPU float64)."""
    return torch.randint(0, 2, shape, generator=generator, dtype=torch.int64).double().mul_(2).sub_(1)


def _position(limit: int, generator: torch.Generator | None) -> int:
    """A uniform integer in ``0..limit``."""
    return int(torch.randint(0, limit + 1, (1,), generator=generator))


def _eta_rectangles(rows: int, cols: int) -> Tensor:
    """Concentric rectangles of weights 1/k² (autoattack's ``eta_rectangles``), unit L2 norm."""
    delta = torch.zeros(rows, cols, dtype=torch.float64)
    top, left = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        delta[max(top - k, 0) : min(top - k + 2 * k + 1, rows), max(left - k, 0) : min(left - k + 2 * k + 1, cols)] += (
            1.0 / (k + 1) ** 2
        )
    return delta / delta.square().sum().sqrt()


def _eta(size: int, transpose: bool) -> Tensor:
    """The square L2 update: two opposite halves of concentric rectangles, unit norm
    (autoattack's ``eta``; the random transpose is drawn by the caller)."""
    delta = torch.cat([_eta_rectangles(size // 2, size), -_eta_rectangles(size - size // 2, size)])
    delta = delta / delta.square().sum().sqrt()
    return delta.T if transpose else delta


def _l2(x: Tensor) -> Tensor:
    return x.flatten(1).norm(dim=1).view(-1, 1, 1, 1)  # (n, 1, 1, 1)


class _Search:
    """The random search state over ``E·B`` rows (row ``e·B + b`` is image ``b`` at ``eps[e]``)."""

    def __init__(self, model, images: Tensor, labels: Tensor, eps: Sequence[float], settings: SquareSettings,
                 generator: torch.Generator | None, max_batch: int | None, stage: int = 0):  # fmt: skip
        self.model, self.settings, self.generator = model, settings, generator
        self.stage = stage  # a monotone sweep's stage, for the draw keys
        batch = images.shape[0]
        if max_batch is None:  # on a CPU, 512-row passes ran 2x slower per image than 64-row ones
            _, saved_per_row = _memory.saved_bytes_per_row(model, images)
            max_batch = _memory.forward_rows(saved_per_row, batch * len(eps), images.device)
        self.max_batch = max_batch
        self.image_of_row = torch.arange(batch).repeat(len(eps))  # (E·B,) CPU
        index = self.image_of_row.to(images.device)
        self.clean = images[index]  # (E·B, C, H, W)
        self.labels = labels[index]
        self.eps = torch.tensor(eps, dtype=images.dtype, device=images.device).repeat_interleave(batch)  # (E·B,)
        self.batch = batch
        self.queries = torch.zeros(len(index), dtype=torch.int64)
        self.checked = False
        self.seed = generator.initial_seed() if generator is not None else 0
        self.calls = 0

    def evaluate(self, x: Tensor, rows: _Rows) -> tuple[Tensor, Tensor]:
        """Margin and loss of ``x`` (the candidates of ``rows``), one query each. The first
        call (the clean check of every row) also checks the labels against the logits."""
        call = self.calls
        self.calls += 1

        def keys(part: slice) -> Tensor:  # made only if a randomized model asks
            return draws.row_keys(self.seed, rows.images[part], call, self.stage, draw=rows.cpu[part] // self.batch)

        logits = []
        for i in range(0, len(rows), self.max_batch):
            part = slice(i, i + self.max_batch)
            with draws.keyed(lambda part=part: keys(part)):
                logits.append(self.model(x[part]))
        logits = logits[0] if len(logits) == 1 else torch.cat(logits)
        if not self.checked:
            checks.check_logits(logits, rows.labels)
            self.checked = True
        self.queries[rows.cpu] += 1
        return _margin_and_loss(logits, rows.labels, self.settings)

    def per_image(self, values: Tensor, rows: _Rows, like: Tensor) -> Tensor:
        """The values drawn per image, one per row of ``rows`` (its image's), as ``like``'s
        dtype and device."""
        return values[rows.images].to(device=like.device, dtype=like.dtype)


class _Rows:
    """Some rows of a :class:`_Search` (``index``, increasing, on the images' device) with
    what every step reads of them gathered once: the search keeps the rows not fooled yet
    as one of these, and gathers a new one only when some become fooled."""

    def __init__(self, search: _Search, index: Tensor) -> None:
        self.index = index
        self.cpu = index.cpu()
        self.images = search.image_of_row[self.cpu]  # (n,) CPU: each row's image
        self.clean = search.clean[index]  # (n, C, H, W)
        self.eps = search.eps[index].view(-1, 1, 1, 1)
        self.labels = search.labels[index]

    def __len__(self) -> int:
        return len(self.index)

    @functools.cached_property
    def box(self) -> tuple[Tensor, Tensor]:
        """The L∞ ball around the clean rows within [0, 1]: lower and upper bounds
        :math:`(n, C, H, W)`. Clamping to them equals clamping to the ball and then to
        [0, 1], bit for bit (min and max round nothing)."""
        return (self.clean - self.eps).clamp(0, 1), (self.clean + self.eps).clamp(0, 1)


def _initial_linf(search: _Search, rows: _Rows) -> Tensor:
    clean, eps = rows.clean, rows.eps
    _, channels, _, width = clean.shape
    stripes = _signs((search.batch, channels, 1, width), search.generator)  # vertical stripes per image
    return (clean + eps * search.per_image(stripes, rows, clean)).clamp(0, 1)


def _initial_l2(search: _Search, rows: _Rows) -> Tensor:
    clean, eps = rows.clean, rows.eps
    batch = search.batch
    _, channels, height, width = clean.shape
    size = max(height // 5, 1)
    start = (height - size * 5) // 2 if height >= 5 else 0
    delta = torch.zeros_like(clean)
    for top in range(start, start + size * (height // size), size):
        for left in range(start, start + size * (width // size), size):
            if top + size > height or left + size > width:
                continue
            signs = search.per_image(_signs((batch, channels, 1, 1), search.generator), rows, clean)
            transpose = bool(torch.randint(0, 2, (1,), generator=search.generator))
            delta[:, :, top : top + size, left : left + size] += _eta(size, transpose).to(clean) * signs
    norm = _l2(delta)
    direction = torch.where(norm > 0, delta / torch.where(norm > 0, norm, 1), 0)
    return (clean + direction * eps).clamp(0, 1)


def _step_linf(search: _Search, rows: _Rows, best: Tensor, step: int) -> Tensor:
    """``best`` with one square of ±2ε added and clamped to the ball: only the square's
    pixels change, ``best`` being inside the ball already."""
    _, channels, height, width = best.shape
    side = min(max(round(math.sqrt(search.settings.fraction(step) * height * width)), 1), height, width)
    top, left = _position(height - side, search.generator), _position(width - side, search.generator)
    signs = search.per_image(_signs((search.batch, channels, 1, 1), search.generator), rows, best)
    window = (slice(None), slice(None), slice(top, top + side), slice(left, left + side))
    low, high = rows.box
    candidate = best.clone()
    square = candidate[window]
    square += 2 * rows.eps * signs
    square.clamp_(low[window], high[window])
    return candidate


def _step_l2(search: _Search, rows: _Rows, best: Tensor, step: int) -> Tensor:
    clean, eps = rows.clean, rows.eps
    _, channels, height, width = clean.shape
    side = max(round(math.sqrt(search.settings.fraction(step) * height * width)), 3)
    side = min(side + (side % 2 == 0), height, width)
    top, left = _position(height - side, search.generator), _position(width - side, search.generator)
    top2, left2 = _position(height - side, search.generator), _position(width - side, search.generator)
    signs = search.per_image(_signs((search.batch, channels, 1, 1), search.generator), rows, clean)
    transpose = bool(torch.randint(0, 2, (1,), generator=search.generator))

    delta = best - clean
    window = (slice(None), slice(None), slice(top, top + side), slice(left, left + side))
    window2 = (slice(None), slice(None), slice(top2, top2 + side), slice(left2, left2 + side))
    both = torch.zeros_like(delta)
    both[window] = 1
    both[window2] = 1
    norm_window = delta[window].square().sum((-2, -1), keepdim=True).sqrt()  # (n, C, 1, 1)
    norm_image, norm_windows = _l2(delta), _l2(delta * both)
    update = _eta(side, transpose).to(clean) * signs + delta[window] / (1e-12 + norm_window)
    budget = ((eps.square() - norm_image.square()).clamp_min(0) / channels + norm_windows.square()).sqrt()
    update = update / (1e-12 + update.square().sum((-2, -1), keepdim=True).sqrt()) * budget
    delta[window2] = 0
    delta[window] = update
    norm = _l2(delta)
    direction = torch.where(norm > 0, delta / torch.where(norm > 0, norm, 1), 0)
    return (clean + direction * eps).clamp(0, 1)


def run_square(model, images: Tensor, labels: Tensor, eps, settings: SquareSettings, *,
               generator: torch.Generator | None = None, max_batch: int | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Square Attack at one or many ε; every argument is checked before any query.

    Returns:
        ``(adversarial, queries)``: :math:`(B, C, H, W)` and :math:`(B,)` for a single ε,
        :math:`(E, B, C, H, W)` and :math:`(E, B)` for a list; ``queries`` counts the
        forward passes each image took at each ε (at most ``n_queries``; 0 where a
        monotone sweep had it fooled at a smaller ε already).
    """
    values, is_list, labels = check_attack_arguments(model, images, labels, eps, max_batch)
    with torch.no_grad(), eval_mode(model):  # the memory probe too: a train-mode pass would move batch-norm statistics
        if settings.monotone and len(values) > 1:
            adversarial, queries = _monotone_search(model, images, labels, values, settings, generator, max_batch)
        else:
            best, _, search = _search(model, images, labels, values, settings, generator, max_batch)
            adversarial, queries = best.view(len(values), *images.shape), search.queries.view(len(values), -1)
    return (adversarial, queries) if is_list else (adversarial[0], queries[0])


def _search(model, images: Tensor, labels: Tensor, values: Sequence[float], settings: SquareSettings, generator,
            max_batch: int | None, images_to_search: Tensor | None = None,
            stage: int = 0) -> tuple[Tensor, Tensor, _Search]:  # fmt: skip
    """The random search over every (image, ε) row: the best points :math:`(E·B, C, H, W)`,
    their margins :math:`(E·B,)` (≤ 0: fooled) and the search state (its query counts).
    ``images_to_search`` (CPU indices, default all): the only images searched, the
    others left clean with no query (their margin ``-inf``); the draws are made for every
    image all the same. ``stage`` keys a randomized model's draws.

    The rows still searched are held compacted (:class:`_Rows`, with their points, margins
    and losses), in the order of their indices, and written back when they are fooled or
    the budget ends: every forward pass sees the rows it would see indexed afresh."""
    initial, step = (_initial_linf, _step_linf) if settings.norm == "inf" else (_initial_l2, _step_l2)
    search = _Search(model, images, labels, values, settings, generator, max_batch, stage)
    searched = torch.arange(len(search.labels), device=images.device)
    if images_to_search is not None:
        chosen = torch.zeros(images.shape[0], dtype=torch.bool)
        chosen[images_to_search] = True
        searched = searched[chosen.repeat(len(values)).to(images.device)]
    margin = torch.full((len(search.labels),), float("-inf"), device=images.device)
    loss = torch.zeros(len(search.labels), device=images.device)
    rows = _Rows(search, searched)
    margin[searched], loss[searched] = search.evaluate(rows.clean, rows)
    best = search.clean.clone()
    rows = _Rows(search, searched[margin[searched] > 0])  # the clean check already succeeds elsewhere
    if len(rows):
        point = initial(search, rows)
        row_margin, row_loss = search.evaluate(point, rows)
        for iteration in range(settings.n_queries - 2):
            searching = row_margin > 0
            if not bool(searching.all()):  # some rows are fooled: store them, search on without them
                done = ~searching
                best[rows.index[done]], margin[rows.index[done]], loss[rows.index[done]] = (
                    point[done], row_margin[done], row_loss[done])  # fmt: skip
                rows = _Rows(search, rows.index[searching])
                point, row_margin, row_loss = point[searching], row_margin[searching], row_loss[searching]
                if not len(rows):
                    break
            candidate = step(search, rows, point, iteration)
            new_margin, new_loss = search.evaluate(candidate, rows)
            better = (new_loss < row_loss) | (new_margin <= 0)
            row_loss = torch.minimum(new_loss, row_loss)
            row_margin = torch.where(better, new_margin, row_margin)
            point = torch.where(better.view(-1, 1, 1, 1), candidate, point)
        best[rows.index], margin[rows.index], loss[rows.index] = point, row_margin, row_loss
    return best, margin, search


def _monotone_search(model, images: Tensor, labels: Tensor, values: Sequence[float], settings: SquareSettings,
                     generator, max_batch: int | None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The ε in increasing order (``monotone``): at each, the images not fooled yet are
    searched with the whole query budget from the generator state the sweep began with
    (the independent sweep's draws); an image fooled at a smaller ε keeps that point.
    Returns the points :math:`(E, B, C, H, W)` and the queries made :math:`(E, B)`."""
    batch = images.shape[0]
    out = torch.empty((len(values), *images.shape), dtype=images.dtype, device=images.device)
    queries = torch.zeros(len(values), batch, dtype=torch.int64)
    fooled = torch.zeros(batch, dtype=torch.bool)
    state = generator.get_state() if generator is not None else None
    last = None
    for stage, e in enumerate(sorted(range(len(values)), key=values.__getitem__)):
        point = images.clone() if last is None else last.clone()
        todo = torch.nonzero(~fooled).flatten()
        if len(todo):
            if state is not None:
                generator.set_state(state)
            best, margin, search = _search(model, images, labels, (values[e],), settings, generator, max_batch, todo,
                                           stage)  # fmt: skip
            device_todo = todo.to(images.device)
            point[device_todo] = best[device_todo]
            fooled[todo] = (margin[device_todo] <= 0).cpu()
            queries[e] = search.queries
        out[e], last = point, point
    return out, queries


class Square(Attack):
    """Square Attack: query-based random search, no gradients (Andriushchenko et al. 2020).

    Args:
        model: classifier on [0, 1] images (only its outputs are used).
        eps: radius or list of radii. Default 8/255.
        norm: ``"inf"`` or ``"2"``.
        n_queries: most forward passes per image, all counted. Default 5000 (torchattacks
            and autoattack; orthocore's study uses 1000).
        p_init: share of the image the first squares cover (the paper's schedule halves
            it from there). Default 0.8.
        loss: ``"margin"`` (default) or ``"ce"``.
        targeted: ``labels`` are targets.
        monotone: search a list of ε in increasing order; an image fooled at a smaller ε
            is counted fooled at the larger ones without further queries, every other
            image is searched at each ε with the independent sweep's own draws. Default
            False: each ε searched as if alone.
        generator: CPU generator for the random search (default: torch's global one).
        max_batch: most images per forward pass; default: a fixed activation budget
            (:func:`orthocore.attacks._memory.forward_rows`; its probe, one pass on 4
            images once per model and image shape, is not counted as a query), so the
            results do not depend on the free memory.

    Attributes:
        queries: after a call, the forward passes each image took: :math:`(B,)`, or
            :math:`(E, B)` for a list of ε.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x = torch.rand(4, 3, 2, 2)
        >>> attack = Square(model, eps=0.1, n_queries=50, generator=torch.Generator().manual_seed(0))
        >>> adv = attack(x, torch.tensor([0, 1, 2, 0]))
        >>> bool((adv - x).abs().max() <= 0.1 + 1e-7)
        True
    """

    name = "square"
    uses_gradients = False

    def __init__(self, model, eps=8 / 255, *, norm="inf", n_queries=5000, p_init=0.8, loss="margin", targeted=False,
                 monotone=False, generator=None, max_batch=None):  # fmt: skip
        settings = SquareSettings(norm=norm, n_queries=n_queries, p_init=p_init, loss=loss, targeted=targeted,
                                  monotone=monotone)  # fmt: skip
        super().__init__(model, eps, settings, generator=generator, max_batch=max_batch)

    def __call__(self, images: Tensor, labels: Tensor) -> Tensor:
        """Adversarial images: :math:`(B, C, H, W)`, or :math:`(E, B, C, H, W)` for a list of ε."""
        adversarial, self.queries = run_square(
            self.model, images, labels, self.eps, self.settings, generator=self.generator, max_batch=self.max_batch
        )
        return adversarial


def square(model: nn.Module, images: Tensor, labels: Tensor, eps=8 / 255, **options) -> Tensor:
    """Function form of :class:`Square`."""
    return Square(model, eps, **options)(images, labels)
