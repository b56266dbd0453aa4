"""Multiscale contrastive regularization (Oh, Lee & Jeong, ISBI 2022, Sec. 2.2; docs/method.md#contrastive-labels).

For each term, pixel labels ``c`` (pseudo-labels with scribbles overriding; 0 background, 1 nucleus,
250 unlabeled) are pooled to δ×δ blocks, a class-balanced sample of ``n = min(n0, n1, max_samples)``
block embeddings per class is drawn over the whole batch, and with L2-normalised projections
``Z0, Z1`` (``n x C'``)::

    S00 = Z0 Z0^T / τ,   S11 = Z1 Z1^T / τ,   S01 = Z0 Z1^T / τ
    L   = mean_{i != j} BCE(S00, 1) + mean_{i != j} BCE(S11, 1) + mean BCE(S01, 0)

(the sum of the three block means, diagonals excluded, as the authors' code does;
docs/method.md#decision-normalisation).

The pairwise part is computed by :func:`pairwise_bce_loss` in row chunks with its gradient in closed
form, so no ``n x n`` autograd intermediate is ever stored, and the two symmetric blocks are
evaluated over their upper triangles only. It always runs in fp32, also under bf16 autocast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.loss import _Loss

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.networks.projection_head import ProjectionHead

__all__ = [
    "ContrastiveTerm",
    "MultiscaleContrastiveLoss",
    "PAPER_TERMS",
    "balanced_sample",
    "block_labels",
    "contrastive_labels",
    "pairwise_bce_loss",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContrastiveTerm:
    """One term of the multiscale contrastive loss.

    Attributes:
        feature: decoder feature name (see :data:`monai_scribble.networks.DECODER_FEATURES`).
        delta: block size δ in input pixels (a power of 2, a multiple of the feature's stride).
        temperature: τ.
        weight: λ.
        nu1: a block is background if its foreground fraction is ``<= nu1``.
        nu2: a block is foreground if its foreground fraction is ``>= nu2``.
        min_valid: a block counts only if at least this fraction of its pixels is labelled (1.0: any
            unlabelled pixel makes the block ignored, the paper/code behaviour).
        max_samples: at most this many samples per class.
        in_channels: channels of the feature.
        hidden_channels: projection head hidden width.
        out_channels: projection dimension C'.
    """

    feature: str = "d5"
    delta: int = 1
    temperature: float = 0.3
    weight: float = 0.5
    nu1: float = 0.0
    nu2: float = 1.0
    min_valid: float = 1.0
    max_samples: int = 6000
    in_channels: int = 16
    hidden_channels: int = 16
    out_channels: int = 32

    def __post_init__(self) -> None:
        if self.delta < 1 or self.delta & (self.delta - 1):
            raise ValueError(f"delta must be a power of 2, got {self.delta}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.nu1 < self.nu2 <= 1.0:
            raise ValueError(f"need 0 <= nu1 < nu2 <= 1, got nu1={self.nu1}, nu2={self.nu2}")
        if not 0.0 < self.min_valid <= 1.0:
            raise ValueError(f"min_valid must be in (0, 1], got {self.min_valid}")
        if self.max_samples < 2:
            raise ValueError(f"max_samples must be >= 2, got {self.max_samples}")

    @property
    def name(self) -> str:
        """Key of this term in :meth:`MultiscaleContrastiveLoss.forward_terms` (e.g. ``contrastive_d5_delta1``)."""
        return f"contrastive_{self.feature}_delta{self.delta}"


PAPER_TERMS: tuple[ContrastiveTerm, ContrastiveTerm] = (
    ContrastiveTerm(feature="d5", delta=1, temperature=0.3, weight=0.5, in_channels=16, hidden_channels=16, out_channels=32),
    ContrastiveTerm(feature="d3", delta=4, temperature=0.1, weight=10.0, in_channels=64, hidden_channels=32, out_channels=32),
)
"""The paper's defaults: λ1=0.5, τ1=0.3 on the full-resolution 16-ch block (δ=1) and λ2=10, τ2=0.1 on
the 1/4-resolution 64-ch block (δ=4), 6000 samples per class, C'=32 (docs/method.md#hyper-parameters)."""


def contrastive_labels(pseudo_labels: torch.Tensor, scribbles: torch.Tensor) -> torch.Tensor:
    """Pixel labels for the contrastive loss: pseudo-labels, with scribbled pixels overriding them.

    Args:
        pseudo_labels: ``(B, H, W)`` in {0, 1, IGNORE} (thresholded EMA; IGNORE where not confident).
        scribbles: ``(B, H, W)`` in {0, 1, IGNORE}.

    Returns:
        ``(B, H, W)`` long tensor in {0, 1, IGNORE}.
    """
    if pseudo_labels.shape != scribbles.shape:
        raise ValueError(f"pseudo_labels {tuple(pseudo_labels.shape)} and scribbles {tuple(scribbles.shape)} differ in shape")
    scribbled = scribbles != IGNORE
    return torch.where(scribbled, scribbles.long(), pseudo_labels.long())


def block_labels(
    labels: torch.Tensor, delta: int, nu1: float = 0.0, nu2: float = 1.0, min_valid: float = 1.0
) -> torch.Tensor:
    """Pool pixel labels to δ×δ blocks.

    A block is ignored unless at least ``min_valid`` of its pixels are labelled; then, with ``f`` the
    foreground fraction of its labelled pixels, it is 0 if ``f <= nu1``, 1 if ``f >= nu2``, else ignored.
    With the defaults (ν1=0, ν2=1, min_valid=1) a block is 1 iff all its pixels are 1 and 0 iff all are 0.

    Args:
        labels: ``(B, H, W)`` in {0, 1, IGNORE}, ``H`` and ``W`` divisible by ``delta``.
        delta: block size.

    Returns:
        ``(B, H/δ, W/δ)`` long tensor in {0, 1, IGNORE}.
    """
    if labels.ndim != 3:
        raise ValueError(f"labels must be (B, H, W), got shape {tuple(labels.shape)}")
    if labels.shape[-2] % delta or labels.shape[-1] % delta:
        raise ValueError(f"label size {tuple(labels.shape[-2:])} is not divisible by delta={delta}")
    if delta == 1 and min_valid > 0:
        return torch.where((labels == BACKGROUND) | (labels == FOREGROUND), labels.long(), torch.full_like(labels.long(), IGNORE))
    valid = (labels != IGNORE).float().unsqueeze(1)
    fg = (labels == FOREGROUND).float().unsqueeze(1)
    area = float(delta * delta)
    valid_count = torch.round(F.avg_pool2d(valid, delta) * area)[:, 0]
    fg_count = torch.round(F.avg_pool2d(fg, delta) * area)[:, 0]
    # compare counts (exact integers) rather than fractions: f <= nu1  <=>  fg <= nu1 * valid
    eps = 1e-6
    counted = valid_count >= min_valid * area - eps
    is_bg = counted & (fg_count <= nu1 * valid_count + eps)
    is_fg = counted & (fg_count >= nu2 * valid_count - eps) & ~is_bg
    out = torch.full(valid_count.shape, IGNORE, dtype=torch.long, device=labels.device)
    out[is_bg] = BACKGROUND
    out[is_fg] = FOREGROUND
    return out


def balanced_sample(
    labels: torch.Tensor, max_samples: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n = min(n0, n1, max_samples)`` random flat indices of each class, without replacement.

    Args:
        labels: any shape, values in {0, 1, IGNORE}; indices refer to ``labels.flatten()``.
        max_samples: cap per class.
        generator: torch generator on ``labels.device`` (``None``: the global RNG).

    Returns:
        ``(idx0, idx1)``, each of length ``n`` (possibly 0), on ``labels.device``.
    """
    flat = labels.flatten()
    idx0 = torch.nonzero(flat == BACKGROUND).flatten()
    idx1 = torch.nonzero(flat == FOREGROUND).flatten()
    n = min(idx0.numel(), idx1.numel(), int(max_samples))

    def pick(idx: torch.Tensor) -> torch.Tensor:
        if idx.numel() == n:
            return idx
        return idx[torch.randperm(idx.numel(), generator=generator, device=idx.device)[:n]]

    return pick(idx0), pick(idx1)


def _bce_and_sigmoid(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise ``softplus(a)`` (BCE-with-logits of ``a`` against target 0) and ``sigmoid(a)``.

    One exp and one log1p per element, from ``e = exp(-|a|)``; stable for any ``a``.
    """
    e = torch.exp(-a.abs())
    return a.clamp_min(0) + torch.log1p(e), torch.where(a >= 0, 1.0, e) / (1.0 + e)


def _pair_block(
    rows: torch.Tensor, cols: torch.Tensor, inv_tau: torch.Tensor, target_one: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BCE-with-logits of ``S = rows @ cols^T * inv_tau`` against a constant target, with its gradient.

    Returns ``(sum of losses, G @ cols, G^T @ rows)`` with ``G = dloss/dS`` (so the gradients w.r.t.
    ``rows`` and ``cols`` are these times ``inv_tau``). target 1: loss = softplus(-S), G = -sigmoid(-S);
    target 0: loss = softplus(S), G = sigmoid(S) (see :func:`_bce_and_sigmoid`); nothing of size
    ``rows x cols`` outlives the call.
    """
    s = (rows @ cols.T) * inv_tau
    loss, sig = _bce_and_sigmoid(-s if target_one else s)
    g = -sig if target_one else sig
    return loss.sum(), g @ cols, g.T @ rows


_COMPILED_PAIR_BLOCK: Callable | None = None


def _pair_block_kernel(use_compile: bool) -> Callable:
    """:func:`_pair_block`, fused by ``torch.compile`` when asked and available (else eager)."""
    global _COMPILED_PAIR_BLOCK
    if not use_compile:
        return _pair_block
    if _COMPILED_PAIR_BLOCK is None:
        _COMPILED_PAIR_BLOCK = torch.compile(_pair_block, dynamic=True)
    return _COMPILED_PAIR_BLOCK


def _same_class_block(u: torch.Tensor, inv_tau: torch.Tensor, chunk: int, kernel: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over i != j of softplus(-u_i.u_j/τ) and its gradient w.r.t. ``u``, over the upper triangle only."""
    n = u.shape[0]
    total = u.new_zeros(())
    grad = torch.zeros_like(u)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = u[start:stop]
        # the diagonal square [start, stop)^2 holds both orders of each pair, and the self-pairs to remove
        loss_sq, g_rows, g_cols = kernel(rows, rows, inv_tau, True)
        self_loss, self_sig = _bce_and_sigmoid(-(rows * rows).sum(dim=1) * inv_tau)  # self-pairs: S_kk = |u_k|^2/τ
        self_g = -self_sig
        total = total + (loss_sq - self_loss.sum())
        grad[start:stop] += g_rows + g_cols - 2.0 * self_g[:, None] * rows
        # the rectangle right of the square stands for itself and its mirror image
        if stop < n:
            loss_rect, g_rows, g_cols = kernel(rows, u[stop:], inv_tau, True)
            total = total + 2.0 * loss_rect
            grad[start:stop] += 2.0 * g_rows
            grad[stop:] += 2.0 * g_cols
    return total, grad * inv_tau


def _cross_class_block(
    u0: torch.Tensor, u1: torch.Tensor, inv_tau: torch.Tensor, chunk: int, kernel: Callable
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum of softplus(u0_i.u1_j/τ) over all pairs and its gradients w.r.t. ``u0`` and ``u1``."""
    total = u0.new_zeros(())
    grad0 = torch.empty_like(u0)
    grad1 = torch.zeros_like(u1)
    for start in range(0, u0.shape[0], chunk):
        rows = u0[start : start + chunk]
        loss, g_rows, g_cols = kernel(rows, u1, inv_tau, False)
        total = total + loss
        grad0[start : start + chunk] = g_rows
        grad1 += g_cols
    return total, grad0 * inv_tau, grad1 * inv_tau


class _PairwiseBCE(torch.autograd.Function):
    """Closed-form forward+backward of the three-block pairwise BCE on unit vectors (see module doc)."""

    @staticmethod
    def forward(ctx, u0: torch.Tensor, u1: torch.Tensor, tau: float, chunk: int, use_compile: bool) -> torch.Tensor:  # type: ignore[override]
        kernel = _pair_block_kernel(use_compile)
        inv_tau = torch.tensor(1.0 / tau, dtype=u0.dtype, device=u0.device)
        n0, n1 = u0.shape[0], u1.shape[0]
        loss00, g00 = _same_class_block(u0, inv_tau, chunk, kernel)
        loss11, g11 = _same_class_block(u1, inv_tau, chunk, kernel)
        loss01, g01_0, g01_1 = _cross_class_block(u0, u1, inv_tau, chunk, kernel)
        c00, c11, c01 = 1.0 / (n0 * (n0 - 1)), 1.0 / (n1 * (n1 - 1)), 1.0 / (n0 * n1)
        ctx.save_for_backward(g00 * c00 + g01_0 * c01, g11 * c11 + g01_1 * c01)
        return loss00 * c00 + loss11 * c11 + loss01 * c01

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        grad_u0, grad_u1 = ctx.saved_tensors
        return grad_output * grad_u0, grad_output * grad_u1, None, None, None


def pairwise_bce_loss(
    z0: torch.Tensor, z1: torch.Tensor, temperature: float, chunk: int = 256, use_compile: bool | str = "auto"
) -> torch.Tensor:
    """The contrastive loss of two balanced samples (docs/method.md#contrastive-1x1).

    ``mean_{i!=j} BCE(S00, 1) + mean_{i!=j} BCE(S11, 1) + mean BCE(S01, 0)`` with ``Sab = ZaZb^T/τ`` and
    ``Z`` the L2-normalised rows of ``z``. Computed in fp32 in row chunks of ``chunk`` with the gradient in
    closed form (peak memory ``O(chunk * n)`` instead of ``O(n^2)``).

    Args:
        z0: ``(n0, C)`` background embeddings, ``n0 >= 2``.
        z1: ``(n1, C)`` foreground embeddings, ``n1 >= 2``.
        temperature: τ > 0.
        chunk: rows per chunk.
        use_compile: fuse the per-chunk kernel with ``torch.compile`` (about 2-3x faster on CPU; the first
            call compiles for a few seconds). ``"auto"``: on CPU when ``min(n0, n1) >= 1024``. Falls back to
            eager (with a warning) when compilation is unavailable.

    Returns:
        Scalar loss, differentiable w.r.t. ``z0`` and ``z1``.
    """
    if z0.ndim != 2 or z1.ndim != 2 or z0.shape[1] != z1.shape[1]:
        raise ValueError(f"expected (n0, C) and (n1, C) embeddings, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    if z0.shape[0] < 2 or z1.shape[0] < 2:
        raise ValueError(f"need at least 2 samples per class, got {z0.shape[0]} and {z1.shape[0]}")
    device_type = z0.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        u0 = F.normalize(z0.float(), dim=1)
        u1 = F.normalize(z1.float(), dim=1)
        if use_compile == "auto":
            use_compile = device_type == "cpu" and min(u0.shape[0], u1.shape[0]) >= 1024
        if use_compile and not _compile_failed:
            try:
                return _PairwiseBCE.apply(u0, u1, float(temperature), int(chunk), True)
            except Exception as err:  # no C++ compiler, unsupported platform, ...
                _disable_compile(err)
        return _PairwiseBCE.apply(u0, u1, float(temperature), int(chunk), False)


_compile_failed = False


def _disable_compile(err: Exception) -> None:
    global _compile_failed
    _compile_failed = True
    logger.warning("torch.compile of the contrastive kernel failed (%s: %s); using the eager kernel", type(err).__name__, err)


class MultiscaleContrastiveLoss(_Loss):
    """Multiscale contrastive regularization: the weighted sum of :class:`ContrastiveTerm` losses.

    The loss owns one :class:`~monai_scribble.networks.ProjectionHead` per term (training-only; optimise
    them with the network and save them in the training checkpoint).

    Args:
        terms: the terms (default :data:`PAPER_TERMS`); dicts are accepted (bundle configs).
        seed: seed of the sampling generator (one per device) and of the projection heads' initialisation,
            which then draws nothing from the global torch RNG, so a seeded run's network, augmentation and
            warm-up are the same with and without contrastive terms (ablations differ from the main stage on);
            ``None`` uses the global torch RNG for both.
        chunk: row chunk of :func:`pairwise_bce_loss`.
        use_compile: ``torch.compile`` the pairwise kernel: ``"auto"`` (CPU and >= 1024 samples), True, False.

    Example::

        loss_fn = MultiscaleContrastiveLoss()
        logits, features = network.forward_features(images)       # features: {"d5": ..., "d3": ...}
        c = contrastive_labels(pseudo_labels, scribbles)           # (B, H, W)
        loss = loss_fn(features, c)
    """

    def __init__(
        self,
        terms: Sequence[ContrastiveTerm | Mapping] = PAPER_TERMS,
        seed: int | None = None,
        chunk: int = 256,
        use_compile: bool | str = "auto",
    ) -> None:
        super().__init__(reduction="sum")
        self.terms = tuple(t if isinstance(t, ContrastiveTerm) else ContrastiveTerm(**dict(t)) for t in terms)
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"terms must differ in (feature, delta), got {names}")
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.heads = nn.ModuleDict(
                {t.name: ProjectionHead(t.in_channels, t.hidden_channels, t.out_channels) for t in self.terms}
            )
        self.seed = seed
        self.chunk = int(chunk)
        self.use_compile = use_compile
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def rng_state(self) -> dict[str, torch.Tensor]:
        """States of the sampling generators, ``{device: state}`` (for bit-identical resumption)."""
        return {device: generator.get_state() for device, generator in self._generators.items()}

    def set_rng_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore :meth:`rng_state` (generators are created on their devices as needed)."""
        for device, generator_state in state.items():
            generator = self._generator(torch.device(device))
            if generator is not None:
                generator.set_state(generator_state.cpu())

    def term_loss(self, term: ContrastiveTerm, feature: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Unweighted loss of one term.

        Args:
            term: the term.
            feature: ``(B, C, H/s, W/s)`` decoder feature at stride ``s``.
            labels: ``(B, H, W)`` pixel labels in {0, 1, IGNORE}.
        """
        if labels.ndim == 4 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if feature.ndim != 4 or labels.ndim != 3 or feature.shape[0] != labels.shape[0]:
            raise ValueError(f"expected features (B, C, h, w) and labels (B, H, W), got {tuple(feature.shape)} and {tuple(labels.shape)}")
        height, width = labels.shape[-2:]
        stride = height // feature.shape[-2]
        if stride * feature.shape[-2] != height or stride * feature.shape[-1] != width:
            raise ValueError(f"label size {(height, width)} is not an integer multiple of feature size {tuple(feature.shape[-2:])}")
        if term.delta % stride:
            raise ValueError(f"{term.name}: delta={term.delta} must be a multiple of the feature stride {stride}")
        if height % term.delta or width % term.delta:
            raise ValueError(f"{term.name}: crop {(height, width)} must be divisible by delta={term.delta}")
        head = self.heads[term.name]
        blocks = block_labels(labels, term.delta, term.nu1, term.nu2, term.min_valid)
        idx0, idx1 = balanced_sample(blocks, term.max_samples, self._generator(blocks.device))
        if idx0.numel() < 2:
            if logger.isEnabledFor(logging.DEBUG):
                counts = int((blocks == BACKGROUND).sum()), int((blocks == FOREGROUND).sum())
                logger.debug("%s: %d background / %d foreground blocks, need 2 of each: term is 0", term.name, *counts)
            return (feature.sum() + sum(p.sum() for p in head.parameters())) * 0.0
        if term.delta == stride:
            # one embedding per feature pixel: evaluate the head's last layers at the samples only
            rows = head.forward_at(feature, torch.cat([idx0, idx1]))
            z0, z1 = rows[: idx0.numel()], rows[idx0.numel() :]
        else:
            # blocks span several feature pixels: project everything, then average each block
            projected = F.avg_pool2d(head(feature), term.delta // stride)
            rows = projected.permute(0, 2, 3, 1).reshape(-1, projected.shape[1])  # flat order of `blocks`
            z0, z1 = rows[idx0], rows[idx1]
        return pairwise_bce_loss(z0, z1, term.temperature, self.chunk, self.use_compile)

    def forward_terms(self, features: Mapping[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted loss of every term, keyed by :attr:`ContrastiveTerm.name` (for logging each term)."""
        missing = [t.feature for t in self.terms if t.feature not in features]
        if missing:
            raise KeyError(f"features {missing} are needed by the contrastive terms but got only {list(features)}")
        return {t.name: self.term_loss(t, features[t.feature], labels) for t in self.terms}

    def forward(
        self, features: Mapping[str, torch.Tensor], labels: torch.Tensor, return_terms: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum ``Σ λ_k R_k`` of the terms (the only place the weights ``λ_k`` are applied).

        Args:
            features: ``{name: (B, C, H/s, W/s)}`` decoder features.
            labels: ``(B, H, W)`` or ``(B, 1, H, W)`` pixel labels in {0, 1, IGNORE}
                (see :func:`contrastive_labels`).
            return_terms: return ``(weighted sum, unweighted terms of forward_terms)``, for logging each
                term; through ``forward`` so that a ``DistributedDataParallel`` wrapper synchronises the
                heads' gradients.
        """
        values = self.forward_terms(features, labels)
        total = sum(t.weight * values[t.name] for t in self.terms)
        return (total, values) if return_terms else total

    def extra_repr(self) -> str:
        return ", ".join(f"{asdict(t)}" for t in self.terms)
