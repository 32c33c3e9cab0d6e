"""The autograd Function shared by EFL and EQFL: loss, analytic gradient and per-class gradient
sums in one chunked pass over the (N, C) logits.

Why a Function and not autograd over torch ops: on LVIS an image has ~45k anchors × 1203 classes,
and autograd through a focal loss keeps ~9 copies of the logits for its backward. Here the forward
keeps exactly one fp32 tensor (the gradient of the returned loss, which backward only rescales), and
the temporaries of the closed forms live one chunk of rows at a time. The same gradient feeds the
per-class statistics, so they are |∂L/∂x| of the loss actually optimised, never a loss-scaled,
overflowed or mis-ordered copy caught by a hook.

The pass never reads a value back to the host (no ``nonzero``, no ``.item()``): the positive entry
of every row is handled by gather/scatter with a mask, so on a GPU the whole pass is queued without
stalling the stream. The one host read of a call is the caller's (``EqualizedLossBase``).
"""
import torch

from .sigmoid_terms import negative_focal_term, positive_focal_term, positive_quality_focal_term

__all__ = ["EqualizedSigmoidLossFunction", "default_chunk_entries"]


def default_chunk_entries(device):
    """Logits per chunk: small enough to keep temporaries in cache on CPU, large enough to keep a
    GPU busy (measured with tools/benchmark_loss.py)."""
    return 1 << 24 if device.type == "cuda" else 1 << 18


class EqualizedSigmoidLossFunction(torch.autograd.Function):
    """Sum over (N, C) entries of ``weight · focal term``, times ``coef``.

    Negative entries (every class of a background row, every other class of a positive row) use the
    focal term p^γ_j·(−log(1−p)) weighted by ``neg_weight[j]``. The positive entry (i, labels[i])
    uses either the focal term (1−p)^γ_j·(−log p) (EFL) or, when ``scores`` is given, the quality
    focal term |q−p|^γ_j·BCE(p, q) (EQFL), weighted by ``pos_weight[j]``.

    ``labels`` is int64; a row whose label is not in [0, C) is a background row (the caller rejects
    labels outside [0, C] after the pass, so an out-of-range label never indexes out of bounds).
    ``coef`` is a number or a 0-dim tensor on the logits' device.

    Returns ``(loss, pos_grad_sum, neg_grad_sum)``: the scalar loss (fp32; fp64 for fp64 logits),
    and the per-class sums of |∂loss/∂x| over positive and negative entries (zeros unless
    ``with_statistics``).
    """

    @staticmethod
    def forward(ctx, logits, labels, scores, gamma, neg_weight, pos_weight, coef, with_statistics,
                chunk_entries):
        num_rows, num_classes = logits.shape
        # float64 inputs are computed in float64 (for exact tests); everything else in float32.
        dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
        device = logits.device
        need_input_grad = ctx.needs_input_grad[0]
        need_grad = need_input_grad or with_statistics
        gamma, neg_weight, pos_weight = (t.to(dtype) for t in (gamma, neg_weight, pos_weight))

        # The positive entry of each row, (N,): computed for every row (N << N·C, so cheap) in
        # float64 and masked, instead of gathering the P positive rows (a data-dependent size, i.e.
        # a host sync). Background rows point at column 0; their values are never used.
        is_pos = (labels >= 0) & (labels < num_classes)  # (N,)
        cols = torch.where(is_pos, labels, 0)  # (N,)
        pos_logits = logits.gather(1, cols[:, None]).squeeze(1).double()
        pos_gamma = gamma[cols].double()
        if scores is None:
            pos_value, pos_grad = positive_focal_term(pos_logits, pos_gamma, need_grad)
        else:
            pos_value, pos_grad = positive_quality_focal_term(pos_logits, pos_gamma, scores.double(), need_grad)
        pos_w = pos_weight[cols].double()  # (N,)
        # torch.where, not a product with the mask: a background row's value may be inf or NaN.
        loss = torch.where(is_pos, pos_value * pos_w, 0).sum()

        neg_col_sums = torch.zeros(num_classes, dtype=torch.float64, device=device)
        pos_grad_sum = torch.zeros(num_classes, dtype=dtype, device=device)
        neg_grad_sum = torch.zeros(num_classes, dtype=dtype, device=device)
        if need_grad:
            pos_grad = torch.where(is_pos, pos_grad * (pos_w * coef), 0).to(dtype)  # (N,)
            if with_statistics:
                pos_grad_sum.index_add_(0, cols, pos_grad.abs())
        grad_logits = torch.empty((num_rows, num_classes), dtype=dtype, device=device) if need_input_grad else None
        neg_grad_scale = neg_weight * coef  # (C,)

        rows_per_chunk = max(1, chunk_entries // max(num_classes, 1))
        for start in range(0, num_rows, rows_per_chunk):
            end = min(start + rows_per_chunk, num_rows)
            x = logits[start:end].to(dtype)
            value, grad = negative_focal_term(x, gamma, need_grad)  # (R, C)
            chunk_is_pos = is_pos[start:end, None]  # (R, 1)
            chunk_cols = cols[start:end, None]  # (R, 1)
            # The positive entries were computed above: take them out of the negative sums
            # exactly (a subtraction would lose a rare class's tiny negative sum).
            value.scatter_(1, chunk_cols, torch.where(chunk_is_pos, 0, value.gather(1, chunk_cols)))
            neg_col_sums += value.sum(0, dtype=torch.float64)
            if not need_grad:
                continue
            grad.mul_(neg_grad_scale)
            at_cols = grad.gather(1, chunk_cols)  # (R, 1): negative derivatives, or the positive's slot
            if with_statistics:
                grad.scatter_(1, chunk_cols, torch.where(chunk_is_pos, 0, at_cols))
                neg_grad_sum += grad.sum(0)  # every negative derivative is ≥ 0
            if need_input_grad:
                grad.scatter_(1, chunk_cols, torch.where(chunk_is_pos, pos_grad[start:end, None], at_cols))
                grad_logits[start:end] = grad

        loss = (loss + (neg_col_sums * neg_weight.double()).sum()) * coef
        if need_input_grad:
            ctx.save_for_backward(grad_logits)
        ctx.logits_dtype = logits.dtype
        ctx.mark_non_differentiable(pos_grad_sum, neg_grad_sum)
        return loss.to(dtype), pos_grad_sum.float(), neg_grad_sum.float()

    @staticmethod
    def backward(ctx, grad_loss, _grad_pos_sum, _grad_neg_sum):
        (grad_logits,) = ctx.saved_tensors
        grad_input = (grad_logits * grad_loss.to(grad_logits.dtype)).to(ctx.logits_dtype)
        return grad_input, None, None, None, None, None, None, None, None
