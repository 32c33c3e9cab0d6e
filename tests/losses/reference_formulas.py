"""Direct transcriptions of the EFL / EQFL / QFL formulas (docs/method.md §1-2, GFL eq. 3), written with
plain torch ops so that torch.autograd provides an independent reference gradient."""
import torch
import torch.nn.functional as F


def one_hot_targets(labels, num_classes, dtype):
    """(N, C) one-hot of foreground labels; background rows (label C) are all zero."""
    targets = torch.zeros(labels.shape[0], num_classes + 1, dtype=dtype)
    targets[torch.arange(labels.shape[0]), labels] = 1
    return targets[:, :num_classes]


def efl_per_entry(logits, targets, gamma, weight, alpha):
    """α_t · w_j · (1 − p_t)^γ_j · (−log p_t); log p_t via logsigmoid so ±30 logits stay exact."""
    z = torch.where(targets > 0, logits, -logits)  # p_t = σ(z)
    alpha_t = torch.where(targets > 0, torch.full_like(logits, alpha), torch.full_like(logits, 1 - alpha))
    return alpha_t * weight * torch.sigmoid(-z) ** gamma * (-F.logsigmoid(z))


def eqfl_per_entry(logits, targets, scores, gamma, weight):
    """w_j · |q − p|^γ_j · BCE(p, q) on positives, w_j · p^γ_j · BCE(p, 0) on negatives."""
    p = torch.sigmoid(logits)
    q = targets * scores[:, None]  # the quality target on the positive entry, 0 elsewhere
    bce = F.binary_cross_entropy_with_logits(logits, q, reduction="none")
    return weight * (p - q).abs() ** gamma * bce


def qfl_per_entry(logits, targets, scores, beta=2.0):
    """Quality Focal Loss (Li et al., GFL, NeurIPS 2020, eq. 3): −|y − σ|^β ((1−y) log(1−σ) + y log σ)."""
    y = targets * scores[:, None]
    sigma = torch.sigmoid(logits)
    return -(y - sigma).abs() ** beta * ((1 - y) * F.logsigmoid(-logits) + y * F.logsigmoid(logits))
