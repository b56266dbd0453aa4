from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from monai_scribble.constants import IGNORE
from monai_scribble.losses import ContrastiveTerm, MultiscaleContrastiveLoss, contrastive_labels
from monai_scribble.losses.contrastive import PAPER_TERMS, balanced_sample, block_labels, pairwise_bce_loss


def naive_pairwise(z0: torch.Tensor, z1: torch.Tensor, tau: float) -> torch.Tensor:
    """The loss with explicit loops over the sampled pairs (docs/method.md#contrastive-1x1), in float64."""
    u0, u1 = F.normalize(z0.double(), dim=1), F.normalize(z1.double(), dim=1)

    def bce(logit: torch.Tensor, target: float) -> torch.Tensor:
        return -(target * F.logsigmoid(logit) + (1 - target) * F.logsigmoid(-logit))

    same0 = [bce(u0[i] @ u0[j] / tau, 1.0) for i in range(len(u0)) for j in range(len(u0)) if i != j]
    same1 = [bce(u1[i] @ u1[j] / tau, 1.0) for i in range(len(u1)) for j in range(len(u1)) if i != j]
    cross = [bce(u0[i] @ u1[j] / tau, 0.0) for i in range(len(u0)) for j in range(len(u1))]
    return torch.stack(same0).mean() + torch.stack(same1).mean() + torch.stack(cross).mean()


def random_labels(batch: int, size: int, seed: int, blob: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(scribbles, pseudo-labels): blobby fg/bg regions, 4-px-wide scribble strokes every 12 rows,
    pseudo-labels with random unconfident pixels."""
    g = torch.Generator().manual_seed(seed)
    coarse = (torch.rand(batch, 1, size // blob, size // blob, generator=g) > 0.6).float()
    mask = F.interpolate(coarse, scale_factor=blob, mode="nearest")[:, 0].long()
    scribbles = torch.full_like(mask, IGNORE)
    strokes = (torch.arange(size) // 4) % 3 == 0
    scribbles[:, strokes] = mask[:, strokes]
    pseudo = mask.clone()
    pseudo[torch.rand(mask.shape, generator=g) < 0.1] = IGNORE
    return scribbles, pseudo


def reference_term(loss_fn: MultiscaleContrastiveLoss, term: ContrastiveTerm, feature, labels, seed) -> torch.Tensor:
    """Recompute one term with the same sampling, the head and explicit pair loops."""
    stride = labels.shape[-1] // feature.shape[-1]
    projected = loss_fn.heads[term.name](feature)
    if term.delta > stride:
        projected = F.avg_pool2d(projected, term.delta // stride)
    blocks = block_labels(labels, term.delta, term.nu1, term.nu2, term.min_valid)
    idx0, idx1 = balanced_sample(blocks, term.max_samples, torch.Generator().manual_seed(seed))
    rows = projected.permute(0, 2, 3, 1).reshape(-1, projected.shape[1])
    return naive_pairwise(rows[idx0], rows[idx1], term.temperature)


@pytest.mark.parametrize("delta", [1, 2, 4])
@pytest.mark.parametrize("crop", [64, 128, 192, 256])
@pytest.mark.parametrize("source", ["scribbles", "pseudo+scribbles"])
def test_matches_naive_reference(delta, crop, source):
    seed = 7 + delta + crop
    scribbles, pseudo = random_labels(2, crop, seed)
    labels = scribbles if source == "scribbles" else contrastive_labels(pseudo, scribbles)
    term = ContrastiveTerm(feature="f", delta=delta, temperature=0.2, max_samples=12, in_channels=6, hidden_channels=5, out_channels=4)
    torch.manual_seed(seed)
    loss_fn = MultiscaleContrastiveLoss([term], seed=seed)
    feature = torch.randn(2, 6, crop, crop)
    value = loss_fn.forward_terms({"f": feature}, labels)[term.name]
    expected = reference_term(loss_fn, term, feature, labels, seed)
    assert value.item() > 0
    assert abs(value.item() - expected.item()) < 1e-5, (value.item(), expected.item())


@pytest.mark.parametrize("delta, stride", [(4, 4), (4, 2), (2, 2)])
def test_reference_on_strided_features(delta, stride):
    scribbles, pseudo = random_labels(2, 128, seed=3, blob=16)
    labels = contrastive_labels(pseudo, scribbles)
    term = ContrastiveTerm(feature="d", delta=delta, temperature=0.1, max_samples=10, in_channels=8, hidden_channels=8, out_channels=4)
    loss_fn = MultiscaleContrastiveLoss([term], seed=1)
    feature = torch.randn(2, 8, 128 // stride, 128 // stride)
    value = loss_fn.forward_terms({"d": feature}, labels)[term.name]
    assert abs(value.item() - reference_term(loss_fn, term, feature, labels, 1).item()) < 1e-5


@pytest.mark.parametrize("n0, n1, tau, chunk", [(2, 2, 0.3, 256), (5, 9, 0.1, 2), (40, 33, 0.3, 7), (64, 64, 0.05, 16)])
def test_pairwise_loss_and_gradient_match_autograd_reference(n0, n1, tau, chunk):
    g = torch.Generator().manual_seed(n0 + n1)
    z0 = torch.randn(n0, 8, generator=g, dtype=torch.float64)
    z1 = torch.randn(n1, 8, generator=g, dtype=torch.float64)
    a0, a1 = z0.clone().requires_grad_(), z1.clone().requires_grad_()
    expected = naive_pairwise(a0, a1, tau)
    expected.backward()
    b0, b1 = z0.float().requires_grad_(), z1.float().requires_grad_()
    value = pairwise_bce_loss(b0, b1, tau, chunk=chunk, use_compile=False)
    value.backward()
    assert abs(value.item() - expected.item()) < 1e-5
    torch.testing.assert_close(b0.grad.double(), a0.grad, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(b1.grad.double(), a1.grad, atol=1e-6, rtol=1e-4)


def test_compiled_kernel_matches_eager():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(300, 32, generator=g), torch.randn(270, 32, generator=g)
    results = []
    for use_compile in (False, True):
        a0, a1 = z0.clone().requires_grad_(), z1.clone().requires_grad_()
        loss = pairwise_bce_loss(a0, a1, 0.1, chunk=64, use_compile=use_compile)
        loss.backward()
        results.append((loss.detach(), a0.grad, a1.grad))
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0, 1e3])
def test_scaling_embeddings_leaves_loss_unchanged(scale):
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(30, 16, generator=g), torch.randn(25, 16, generator=g)
    base = pairwise_bce_loss(z0, z1, 0.3, use_compile=False)
    torch.testing.assert_close(pairwise_bce_loss(z0 * scale, z1 * scale, 0.3, use_compile=False), base, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_scaling_features_leaves_module_loss_unchanged(scale):
    scribbles, pseudo = random_labels(2, 64, seed=5)
    labels = contrastive_labels(pseudo, scribbles)
    features = {"d5": torch.randn(2, 16, 64, 64), "d3": torch.randn(2, 64, 16, 16)}
    torch.manual_seed(0)
    first = MultiscaleContrastiveLoss(seed=0)
    torch.manual_seed(0)
    second = MultiscaleContrastiveLoss(seed=0)
    base = first.forward_terms(features, labels)
    scaled = second.forward_terms({k: v * scale for k, v in features.items()}, labels)
    for name in base:  # the heads start with a bias-free conv and batch norm (training mode)
        torch.testing.assert_close(scaled[name], base[name], rtol=1e-3, atol=1e-4)


def test_separated_features_give_lower_loss_than_random():
    g = torch.Generator().manual_seed(2)
    direction = F.normalize(torch.randn(16, generator=g), dim=0)
    z0 = direction + 0.1 * torch.randn(50, 16, generator=g)
    z1 = -direction + 0.1 * torch.randn(50, 16, generator=g)
    separated = pairwise_bce_loss(z0, z1, 0.3, use_compile=False)
    random = pairwise_bce_loss(torch.randn(50, 16, generator=g), torch.randn(50, 16, generator=g), 0.3, use_compile=False)
    assert separated < 0.5 * random
    # the same through the module: features equal to the label (plus noise) beat random features
    scribbles, pseudo = random_labels(2, 64, seed=4)
    labels = contrastive_labels(pseudo, scribbles)
    signal = (labels == 1).float()[:, None].repeat(1, 16, 1, 1) * 4 - 2
    torch.manual_seed(0)
    loss_fn = MultiscaleContrastiveLoss([PAPER_TERMS[0]], seed=0)
    informative = loss_fn({"d5": signal + 0.1 * torch.randn_like(signal)}, labels)
    uninformative = loss_fn({"d5": torch.randn_like(signal)}, labels)
    assert informative < uninformative


def test_gradients_reach_features_and_heads():
    scribbles, pseudo = random_labels(2, 64, seed=6)
    labels = contrastive_labels(pseudo, scribbles)
    features = {"d5": torch.randn(2, 16, 64, 64, requires_grad=True), "d3": torch.randn(2, 64, 16, 16, requires_grad=True)}
    loss_fn = MultiscaleContrastiveLoss(seed=0)
    values = loss_fn.forward_terms(features, labels)
    assert all(v.item() > 0 for v in values.values())
    loss_fn(features, labels).backward()
    for name, feature in features.items():
        assert feature.grad is not None and feature.grad.abs().sum() > 0, name
    for name, parameter in loss_fn.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_weights_and_term_names():
    loss_fn = MultiscaleContrastiveLoss(seed=0)
    assert [t.name for t in loss_fn.terms] == ["contrastive_d5_delta1", "contrastive_d3_delta4"]
    assert [(t.delta, t.temperature, t.weight, t.max_samples) for t in loss_fn.terms] == [(1, 0.3, 0.5, 6000), (4, 0.1, 10.0, 6000)]
    scribbles, pseudo = random_labels(2, 64, seed=8)
    labels = contrastive_labels(pseudo, scribbles)
    features = {"d5": torch.randn(2, 16, 64, 64), "d3": torch.randn(2, 64, 16, 16)}
    torch.manual_seed(0)
    terms = MultiscaleContrastiveLoss(seed=0).forward_terms(features, labels)
    torch.manual_seed(0)
    total = MultiscaleContrastiveLoss(seed=0)(features, labels)
    torch.testing.assert_close(total, 0.5 * terms["contrastive_d5_delta1"] + 10.0 * terms["contrastive_d3_delta4"])
    torch.manual_seed(0)  # same head initialisation
    returned_total, returned = MultiscaleContrastiveLoss(seed=0)(features, labels, return_terms=True)  # through forward (DDP)
    torch.testing.assert_close(returned_total, total)
    assert returned.keys() == terms.keys()
    for name in terms:
        torch.testing.assert_close(returned[name], terms[name])


def test_dict_terms_from_bundle_config():
    loss_fn = MultiscaleContrastiveLoss([{"feature": "d4", "delta": 2, "in_channels": 32, "hidden_channels": 8}])
    assert loss_fn.terms[0] == ContrastiveTerm(feature="d4", delta=2, in_channels=32, hidden_channels=8)


def edge_labels(case: str) -> torch.Tensor:
    labels = torch.full((2, 32, 32), IGNORE)
    if case == "one class absent":
        labels[:, :16] = 0
    elif case == "single sample":
        labels[:, :16] = 0
        labels[0, 20, 20] = 1
    elif case == "all ignored":
        pass
    return labels


@pytest.mark.parametrize("case", ["one class absent", "all ignored", "single sample"])
def test_edge_cases_are_connected_zeros(case):
    features = {"d5": torch.randn(2, 16, 32, 32, requires_grad=True), "d3": torch.randn(2, 64, 8, 8, requires_grad=True)}
    loss_fn = MultiscaleContrastiveLoss(seed=0)
    loss = loss_fn(features, edge_labels(case))
    assert loss.item() == 0.0 and math.isfinite(loss.item())
    loss.backward()
    assert all(f.grad is not None and torch.isfinite(f.grad).all() for f in features.values())


def test_bf16_autocast_close_to_fp32():
    scribbles, pseudo = random_labels(2, 64, seed=9)
    labels = contrastive_labels(pseudo, scribbles)
    features = {"d5": torch.randn(2, 16, 64, 64), "d3": torch.randn(2, 64, 16, 16)}
    torch.manual_seed(0)
    loss_fn = MultiscaleContrastiveLoss(seed=0)
    fp32 = loss_fn.forward_terms(features, labels)
    loss_fn._generators.clear()  # same samples again
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = loss_fn.forward_terms(features, labels)
    for name in fp32:
        assert bf16[name].dtype == torch.float32
        assert abs(bf16[name].item() - fp32[name].item()) <= 1e-2 * abs(fp32[name].item()), name


BLOCK = {"fg": torch.ones(4, 4), "bg": torch.zeros(4, 4), "mixed": torch.eye(4), "one_unlabelled": torch.ones(4, 4)}


def hand_made_map() -> torch.Tensor:
    """2x3 blocks of 4x4: pure fg, pure bg, mixed / fg with one unlabelled pixel, all unlabelled, 15 fg + 1 bg."""
    labels = torch.full((1, 8, 12), IGNORE, dtype=torch.long)
    labels[0, 0:4, 0:4] = 1
    labels[0, 0:4, 4:8] = 0
    labels[0, 0:4, 8:12] = torch.eye(4, dtype=torch.long)
    labels[0, 4:8, 0:4] = 1
    labels[0, 4, 0] = IGNORE
    labels[0, 4:8, 8:12] = 1
    labels[0, 7, 11] = 0
    return labels


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, [[1, 0, IGNORE], [IGNORE, IGNORE, IGNORE]]),  # paper: nu1=0, nu2=1, any unlabelled pixel -> ignored
        ({"min_valid": 0.9}, [[1, 0, IGNORE], [1, IGNORE, IGNORE]]),  # 15/16 labelled, all fg -> fg
        ({"nu1": 0.25, "nu2": 0.9}, [[1, 0, 0], [IGNORE, IGNORE, 1]]),  # eye: 4/16 fg <= 0.25; 15/16 >= 0.9
        ({"nu1": 0.2, "nu2": 0.95}, [[1, 0, IGNORE], [IGNORE, IGNORE, IGNORE]]),
    ],
)
def test_block_labels_delta4(kwargs, expected):
    blocks = block_labels(hand_made_map(), 4, **kwargs)
    assert blocks.tolist() == [expected]


def test_block_labels_delta1_is_identity_on_valid_values():
    labels = hand_made_map()
    assert torch.equal(block_labels(labels, 1), labels)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: block_labels(torch.zeros(1, 6, 8, dtype=torch.long), 4), r"label size \(6, 8\) is not divisible by delta=4"),
        (lambda: ContrastiveTerm(delta=3), "delta must be a power of 2, got 3"),
        (lambda: ContrastiveTerm(nu1=0.6, nu2=0.5), "need 0 <= nu1 < nu2 <= 1"),
        (lambda: ContrastiveTerm(temperature=0), "temperature must be > 0"),
        (lambda: MultiscaleContrastiveLoss([ContrastiveTerm(), ContrastiveTerm()]), "terms must differ"),
        (lambda: MultiscaleContrastiveLoss()({"d5": torch.randn(1, 16, 32, 32)}, torch.zeros(1, 32, 32)), r"features \['d3'\] are needed"),
        (
            lambda: MultiscaleContrastiveLoss([ContrastiveTerm(feature="d3", delta=2, in_channels=64)])(
                {"d3": torch.randn(1, 64, 8, 8)}, torch.zeros(1, 32, 32)
            ),
            "delta=2 must be a multiple of the feature stride 4",
        ),
        (lambda: pairwise_bce_loss(torch.randn(1, 4), torch.randn(3, 4), 0.1), "need at least 2 samples per class, got 1 and 3"),
    ],
)
def test_errors_quote_the_problem(call, message):
    with pytest.raises((ValueError, KeyError), match=message):
        call()


def test_sampling_is_balanced_seeded_and_on_device():
    labels = torch.tensor([0] * 50 + [1] * 20 + [IGNORE] * 30)
    idx0, idx1 = balanced_sample(labels, 6000, torch.Generator().manual_seed(0))
    assert len(idx0) == len(idx1) == 20 and (labels[idx0] == 0).all() and (labels[idx1] == 1).all()
    assert len(set(idx0.tolist())) == 20
    again, _ = balanced_sample(labels, 6000, torch.Generator().manual_seed(0))
    other, _ = balanced_sample(labels, 6000, torch.Generator().manual_seed(1))
    assert torch.equal(idx0, again) and not torch.equal(idx0, other)
    capped0, capped1 = balanced_sample(labels, 5, torch.Generator().manual_seed(0))
    assert len(capped0) == len(capped1) == 5


@pytest.mark.parametrize("seed, leaves_global_rng", [(0, True), (7, True), (None, False)])
def test_seeded_heads_draw_nothing_from_the_global_rng(seed, leaves_global_rng):
    torch.manual_seed(123)
    first = MultiscaleContrastiveLoss(seed=seed)
    after_loss = torch.rand(3)
    torch.manual_seed(123)
    untouched = torch.rand(3)
    assert torch.equal(after_loss, untouched) is leaves_global_rng  # seeded: the warm-up is the same as without the loss
    if seed is not None:
        again = MultiscaleContrastiveLoss(seed=seed)
        assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
