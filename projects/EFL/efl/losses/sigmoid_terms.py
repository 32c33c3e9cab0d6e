"""Per-entry values and analytic derivatives of the sigmoid focal terms used by EFL and EQFL.

Everything is written with log-sigmoid / softplus so that logits of ±100 (or more) stay finite;
the reference implementation takes the log of a plain sigmoid, which overflows (docs/method.md §6.3).
Derivatives are with respect to the logit x, with the focusing factor γ treated as a constant,
as in the paper (docs/method.md §4).
"""
import torch
import torch.nn.functional as F

__all__ = ["negative_focal_term", "positive_focal_term", "positive_quality_focal_term"]


def negative_focal_term(x, gamma, with_grad=True):
    """The focal term of a negative entry (target 0): p^γ · (−log(1−p)), p = σ(x).

    Args:
        x: logits, float32 or float64, any shape.
        gamma: focusing factors broadcastable to ``x`` (e.g. (C,) for per-class γ_j).
        with_grad: also return d/dx, which is ≥ 0.

    Returns:
        (value, grad): tensors shaped like ``x``; grad is None when ``with_grad`` is False.
    """
    log_p = F.logsigmoid(x)
    neg_log_1mp = x - log_p  # softplus(x) = −log(1 − p)
    p_pow_gamma = torch.exp(log_p * gamma)
    value = p_pow_gamma * neg_log_1mp
    if not with_grad:
        return value, None
    # d/dx p^γ·softplus(x) = p^γ · [p + γ (1 − p) softplus(x)], using dp/dx = p(1 − p).
    one_minus_p = torch.exp(-neg_log_1mp)
    grad = one_minus_p.mul_(neg_log_1mp).mul_(gamma).add_(log_p.exp_()).mul_(p_pow_gamma)
    return value, grad


def positive_focal_term(x, gamma, with_grad=True):
    """The focal term of a positive entry (target 1): (1−p)^γ · (−log p).

    It is the negative term of −x, so its derivative is the negated negative derivative at −x
    (≤ 0: the loss falls as the logit rises).
    """
    value, grad = negative_focal_term(-x, gamma, with_grad)
    return value, (None if grad is None else grad.neg_())


def positive_quality_focal_term(x, gamma, score, with_grad=True):
    """The quality focal term of a positive entry with soft target q (EQFL / QFL):
    |q − p|^γ · BCE(p, q), with BCE(p, q) = −q log p − (1 − q) log(1 − p).

    Derivative (docs/method.md §4): sgn(p − q)|p − q|^(γ−1) [(p − q)² + γ p (1 − p) BCE(p, q)],
    which vanishes at p = q and pushes p towards q from either side. With q = 0 it equals the
    negative term.
    """
    p = torch.sigmoid(x)
    diff = p - score
    abs_diff = diff.abs()
    bce = F.softplus(x) - score * x
    value = abs_diff.pow(gamma) * bce
    if not with_grad:
        return value, None
    # |d|^(γ−1) is 0·∞ at d = 0 for γ < 1; the derivative there is 0 whatever γ > 0.
    abs_diff_pow = torch.where(abs_diff > 0, abs_diff.pow(gamma - 1), torch.zeros_like(abs_diff))
    p_times_1mp = p * torch.sigmoid(-x)
    grad = torch.sign(diff) * abs_diff_pow * (diff * diff + gamma * p_times_1mp * bce)
    return value, grad
