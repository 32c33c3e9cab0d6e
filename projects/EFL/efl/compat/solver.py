"""Gradient clipping inside ``optimizer.step()``, detectron2's way."""
from detectron2.solver import build as _build

__all__ = ["optimizer_class_with_gradient_clipping"]


def optimizer_class_with_gradient_clipping(optimizer_type, *, global_clipper):
    """A subclass of ``optimizer_type`` whose ``step()`` first calls ``global_clipper(params)``
    on all its parameters.

    This is the mechanism of detectron2's "full_model" clip type (``solver.build``); detectron2
    0.6 keeps it private (``_generate_optimizer_class_with_gradient_clipping``) and exposes only
    the yacs-config path.

    Args:
        optimizer_type: a ``torch.optim.Optimizer`` subclass.
        global_clipper: ``callable(iterable of parameters)`` that clips their gradients in place.
    """
    return _build._generate_optimizer_class_with_gradient_clipping(
        optimizer_type, global_clipper=global_clipper
    )
