"""The methods the bundle trains (``--method``): which targets the CE learns from, pseudo-labels or not, which contrastive terms."""

from __future__ import annotations

import torch

from monai_scribble.errors import ArgumentError
from monai_scribble.losses.contrastive import ContrastiveTerm, MultiscaleContrastiveLoss

__all__ = ["METHODS", "contrastive_loss", "contrastive_terms", "method_settings"]

METHODS: dict[str, dict] = {
    "supervised": {"targets": "label", "pseudo_labels": False, "terms": ()},
    "scribble_only": {"targets": "scribble", "pseudo_labels": False, "terms": ()},
    "s2l": {"targets": "scribble", "pseudo_labels": True, "terms": ()},
    "s2l_r1": {"targets": "scribble", "pseudo_labels": True, "terms": ("r1",)},
    "s2l_r4": {"targets": "scribble", "pseudo_labels": True, "terms": ("r4",)},
    "s2l_r1r4": {"targets": "scribble", "pseudo_labels": True, "terms": ("r1", "r4")},
}
"""``targets``: what the partial CE learns from (full masks for ``supervised``); ``pseudo_labels``: EMA
pseudo-labels in the main stage; ``terms``: contrastive terms (r1: δ=1 on d5, r4: δ=4 on d3)."""


def method_settings(method: str) -> dict:
    """The preset of ``method`` (raises :class:`~monai_scribble.errors.ArgumentError` listing the methods)."""
    if method not in METHODS:
        raise ArgumentError("method", f"unknown value {method!r}", f"choose one of {', '.join(METHODS)}")
    return METHODS[method]


def contrastive_terms(
    method: str,
    lambda1: float = 0.5,
    tau1: float = 0.3,
    lambda2: float = 10.0,
    tau2: float = 0.1,
    max_samples: int = ContrastiveTerm.max_samples,
) -> list[ContrastiveTerm]:
    """The contrastive terms ``method`` uses, with the bundle's λ, τ and sample cap."""
    chosen = method_settings(method)["terms"]
    terms = {
        "r1": ContrastiveTerm(feature="d5", delta=1, temperature=tau1, weight=lambda1, max_samples=max_samples,
                              in_channels=16, hidden_channels=16, out_channels=32),
        "r4": ContrastiveTerm(feature="d3", delta=4, temperature=tau2, weight=lambda2, max_samples=max_samples,
                              in_channels=64, hidden_channels=32, out_channels=32),
    }
    return [terms[name] for name in chosen]


def contrastive_loss(method: str, seed: int = 0, device: str | torch.device = "cpu", **term_settings) -> MultiscaleContrastiveLoss | None:
    """The multiscale contrastive loss of ``method`` on ``device`` (its projection heads seeded by ``seed``), or
    ``None`` for a method without contrastive terms (supervised, scribble-only, S2L).

    ``term_settings``: ``lambda1``, ``tau1``, ``lambda2``, ``tau2``, ``max_samples`` of :func:`contrastive_terms`.
    """
    terms = contrastive_terms(method, **term_settings)
    return MultiscaleContrastiveLoss(terms, seed=seed).to(device) if terms else None
