"""The autograd Function shared by EFL and EQFL: loss, analytic gradient and per-class gradient
sums in one chunked pass over the (N, C) logits.

Why a Function and not autograd over torch ops: on LVIS an image has ~45k anchors × 1203 classes,
and autograd through a focal loss keeps ~9 copies of the logits for its backward. Here the forward
keeps exactly one fp32 tensor (the gradient of the returned loss, which backward only rescales), and
the temporaries of the closed forms live one chunk of rows at a time. The same gradient feeds the
per-class statistics, so they are |∂L/∂x| of the loss actually optimised, never a loss-scaled,
overflowed or mis-ordered copy caught by a hook.
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

    Returns ``(loss, pos_grad_sum, neg_grad_sum)``: the scalar loss (fp32; fp64 for fp64 logits), and the per-class sums
    of |∂loss/∂x| over positive and negative entries (zeros unless ``with_statistics``).
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

        # Positive entries, (P,), rows sorted ascending.
        pos_rows = torch.nonzero(labels < num_classes).squeeze(1)
        pos_cols = labels[pos_rows]

        # The few positive entries are computed apart, in float64 (cheap: P << N·C).
        pos_logits = logits[pos_rows, pos_cols].double()
        pos_gamma = gamma[pos_cols].double()
        if scores is None:
            pos_value, pos_grad = positive_focal_term(pos_logits, pos_gamma, need_grad)
        else:
            pos_value, pos_grad = positive_quality_focal_term(
                pos_logits, pos_gamma, scores[pos_rows].double(), need_grad
            )
        loss = (pos_value * pos_weight[pos_cols].double()).sum()

        neg_col_sums = torch.zeros(num_classes, dtype=torch.float64, device=device)
        pos_grad_sum = torch.zeros(num_classes, dtype=dtype, device=device)
        neg_grad_sum = torch.zeros(num_classes, dtype=dtype, device=device)
        if need_grad:
            pos_grad = (pos_grad * (pos_weight[pos_cols].double() * coef)).to(dtype)
            if with_statistics:
                pos_grad_sum.index_add_(0, pos_cols, pos_grad.abs())
        grad_logits = torch.empty((num_rows, num_classes), dtype=dtype, device=device) if need_input_grad else None
        neg_grad_scale = neg_weight * coef  # (C,)

        rows_per_chunk = max(1, chunk_entries // max(num_classes, 1))
        chunk_starts = list(range(0, num_rows, rows_per_chunk))
        # Where each chunk's positives start in pos_rows: one host sync for the whole loop.
        pos_bounds = torch.searchsorted(
            pos_rows, torch.tensor(chunk_starts + [num_rows], device=device, dtype=pos_rows.dtype)
        ).tolist()
        for k, start in enumerate(chunk_starts):
            end = min(start + rows_per_chunk, num_rows)
            x = logits[start:end].to(dtype)
            value, grad = negative_focal_term(x, gamma, need_grad)
            # The positive entries of this chunk were computed above: take them out of the
            # negative sums exactly (a subtraction would lose a rare class's tiny negative sum).
            chunk_pos = slice(pos_bounds[k], pos_bounds[k + 1])
            local_rows = pos_rows[chunk_pos] - start
            local_cols = pos_cols[chunk_pos]
            value[local_rows, local_cols] = 0
            neg_col_sums += value.sum(0, dtype=torch.float64)
            if not need_grad:
                continue
            grad.mul_(neg_grad_scale)
            grad[local_rows, local_cols] = 0
            if with_statistics:
                neg_grad_sum += grad.sum(0)  # every negative derivative is ≥ 0
            if need_input_grad:
                grad[local_rows, local_cols] = pos_grad[chunk_pos]
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
