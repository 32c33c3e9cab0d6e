"""SGD parameter groups and whole-model gradient-norm clipping for an optimizer built from a
LazyConfig."""
import torch
from detectron2.solver.build import get_default_optimizer_params
from detectron2.utils.events import get_event_storage

from ..compat import optimizer_class_with_gradient_clipping
from .bias_decay import classifier_biases

__all__ = ["add_full_model_gradient_clipping", "params_with_classifier_bias_decay"]


def params_with_classifier_bias_decay(model, *, classifier_bias_weight_decay=None, **kwargs):
    """Detectron2's ``get_default_optimizer_params(model, **kwargs)``, with the classification
    biases (:data:`efl.engine.bias_decay.CLASSIFIER_BIAS`) in a group of their own at
    ``classifier_bias_weight_decay`` (None: they stay where Detectron2 puts them).

    The CPU demo uses it to keep the LVIS recipe's integrated bias decay over a short schedule
    (efl.engine.bias_decay.matching_integrated_weight_decay); every other parameter keeps the
    recipe's decay.
    """
    groups = get_default_optimizer_params(model, **kwargs)
    if classifier_bias_weight_decay is None:
        return groups
    biases = {id(p): p for _, p in classifier_biases(model)}
    if not biases:
        raise ValueError("classifier_bias_weight_decay is set but the model has no classification "
                         "bias (efl.engine.bias_decay.CLASSIFIER_BIAS)")
    groups = [dict(g, params=[p for p in g["params"] if id(p) not in biases]) for g in groups]
    groups = [g for g in groups if g["params"]]
    return groups + [{"params": list(biases.values()),
                      "weight_decay": float(classifier_bias_weight_decay)}]


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
