"""Weight decay on the classification bias: what drives EFL's gradient ratio (docs/method.md §8).

Summed over a run, the per-class statistics of an equalized loss obey (one process, no clipping)

    N_j - P_j = lambda * sum_t |b_j(t)|  -  D_j

where b_j are the classification biases of class j (one per anchor, summed), lambda their weight
decay and D_j a displacement term set by how far b_j moved (divided by the learning rate, times
1 - momentum). The first term grows with the length of training and is the same for every class;
P_j is large for a frequent class and tiny for a rare one, so the ratio P_j / N_j of a rare class
falls below 1 in proportion to lambda * T. A short run keeps the long recipe's ratios only if it
keeps lambda * T: :func:`matching_integrated_weight_decay`. A run whose classification bias is
not decayed loses the main driver, and EFL stays close to focal loss: :func:`check_bias_decay`.
"""
import logging
import re

from omegaconf import OmegaConf

from ..utils.distributed import unwrap_model

__all__ = [
    "CLASSIFIER_BIAS",
    "LVIS_RECIPES",
    "check_bias_decay",
    "classifier_biases",
    "integrated_bias_decay",
    "matching_integrated_weight_decay",
]

logger = logging.getLogger(__name__)

# Full parameter names of the classification biases: Detectron2's RetinaNetHead and the improved
# baseline's head (`head.cls_score`), YOLOX-IP's decoupled head (`head.cls_preds.<level>`).
CLASSIFIER_BIAS = r"(.*\.)?(cls_score|cls_preds\.\d+)\.bias"

# lambda_bias and T of the LVIS v1 recipes (configs/common/{optim,schedules,yolox_optim}.py; a test
# checks these against the configs): the improved baseline decays every parameter by 1e-4 over
# 24 RFS epochs at 16 images; YOLOX-IP decays its classification biases by 5e-4 over 300 epochs
# at 128 images.
LVIS_RECIPES = {
    "improved baseline": {"weight_decay": 1e-4, "max_iter": 188_280},
    "YOLOX-IP": {"weight_decay": 5e-4, "max_iter": 234_900},
}


def matching_integrated_weight_decay(recipe_weight_decay, recipe_max_iter, max_iter):
    """The classification-bias weight decay that gives a ``max_iter``-iteration run the same
    integrated decay lambda * T as a recipe of ``recipe_max_iter`` iterations at
    ``recipe_weight_decay`` (the demo's compression rule, docs/method.md §8.3).

    The SGD step multiplies a bias by (1 - lr * lambda) each iteration, so lr * lambda must stay
    well below 1 for the rule to make sense; that is checked at the demo's learning rate by
    tests, not here (the learning rate is not known to a config value).
    """
    if not (recipe_weight_decay >= 0 and recipe_max_iter > 0 and max_iter > 0):
        raise ValueError("matching_integrated_weight_decay needs recipe_weight_decay >= 0 and "
                         f"positive iteration counts, got {recipe_weight_decay}, {recipe_max_iter}, "
                         f"{max_iter}")
    return recipe_weight_decay * recipe_max_iter / max_iter


def classifier_biases(model):
    """``[(name, parameter)]`` of the model's trainable classification biases (names without a
    DDP ``module.`` prefix)."""
    pattern = re.compile(CLASSIFIER_BIAS)
    out = []
    for name, param in unwrap_model(model).named_parameters():
        if param.requires_grad and pattern.fullmatch(name):
            out.append((name, param))
    return out


def integrated_bias_decay(optimizer, biases, max_iter):
    """``{name: lambda * T}`` of each bias in ``biases`` (``[(name, parameter)]``): its parameter
    group's weight decay times ``max_iter``; 0 for a bias the optimizer does not train."""
    decay = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            decay[id(p)] = float(group.get("weight_decay", 0.0))
    return {name: decay.get(id(p), 0.0) * max_iter for name, p in biases}


def check_bias_decay(model, optimizer, max_iter, *, equalized_losses, threshold=0.1):
    """Log once, at the start of training, how much the classification biases are decayed
    (lambda * T beside the LVIS recipes'), and warn when a model trained with an engaged
    equalized loss (scale_factor > 0) gets less than ``threshold`` x the smaller recipe's: its
    gradient ratio then hardly leaves 1 and EFL stays close to focal loss (docs/method.md §8).

    Returns the smallest lambda * T among the biases (None when the model has none).
    """
    engaged = [m for _, m in equalized_losses if float(m.scale_factor) > 0]
    biases = classifier_biases(model)
    if not engaged or not biases:
        return None
    integrated = min(integrated_bias_decay(optimizer, biases, max_iter).values())
    recipes = ", ".join(f"{name} {r['weight_decay']:g} x {r['max_iter']:,} = "
                        f"{r['weight_decay'] * r['max_iter']:.1f}" for name, r in LVIS_RECIPES.items())
    floor = threshold * min(r["weight_decay"] * r["max_iter"] for r in LVIS_RECIPES.values())
    message = (f"classification-bias weight decay x iterations: lambda_bias * T = {integrated:.3g} "
               f"({max_iter:,} iterations); the LVIS recipes: {recipes}")
    if integrated < floor:
        logger.warning(
            message + ". The weight decay of the classification bias, integrated over training, "
            "is what moves the equalized loss's gradient ratio below 1 (docs/method.md §8): with "
            "this little of it the ratio stays near 1 and EFL/EQFL behave almost like focal loss "
            "/ QFL. Decay the classification bias (see the demo configs' "
            "matching_integrated_weight_decay) unless that is what you want.")
    else:
        logger.info(message)
    return integrated


# ``${efl.matching_weight_decay:RECIPE_WEIGHT_DECAY,RECIPE_MAX_ITER,MAX_ITER}`` in a config, so that
# the decay follows an override of the run's train.max_iter.
if not OmegaConf.has_resolver("efl.matching_weight_decay"):
    OmegaConf.register_new_resolver(
        "efl.matching_weight_decay",
        lambda wd, recipe_iters, iters: matching_integrated_weight_decay(float(wd), int(recipe_iters), int(iters)))
