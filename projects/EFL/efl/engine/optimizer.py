"""Whole-model gradient-norm clipping for an optimizer built from a LazyConfig."""
import torch
from detectron2.utils.events import get_event_storage

from ..compat import optimizer_class_with_gradient_clipping

__all__ = ["add_full_model_gradient_clipping"]


def add_full_model_gradient_clipping(optimizer, *, enabled=True, max_norm=35.0, norm_type=2.0):
    """Make ``optimizer.step()`` first clip the gradients of all its parameters, together, to a
    total ``norm_type``-norm of at most ``max_norm`` (EOD's ``grad_clipper``: L2, 35 on LVIS).

    Clipping happens inside ``step()``, so under AMP it sees the gradients that
    ``GradScaler.step`` has already unscaled, and skipped (overflow) steps clip nothing.
    The norm before clipping goes to the event storage as ``grad_norm``.

    Args:
        optimizer: an instantiated ``torch.optim.Optimizer``; changed in place and returned.
        enabled: when False the optimizer is returned unchanged.
        max_norm: the largest allowed total gradient norm.
        norm_type: the p of the p-norm (``inf`` for the max-norm).
    """
    if not enabled:
        return optimizer
    if not max_norm > 0:
        raise ValueError(f"gradient clipping needs max_norm > 0, got {max_norm}")

    def clip_full_model(params):
        total_norm = torch.nn.utils.clip_grad_norm_(list(params), max_norm, norm_type)
        try:
            get_event_storage().put_scalar("grad_norm", float(total_norm))
        except AssertionError:  # no EventStorage outside a trainer
            pass

    # Detectron2's own mechanism for its "full_model" clip type: a subclass whose step() clips
    # first. Re-classing the instance keeps its param groups and state.
    optimizer.__class__ = optimizer_class_with_gradient_clipping(
        type(optimizer), global_clipper=clip_full_model)
    return optimizer
