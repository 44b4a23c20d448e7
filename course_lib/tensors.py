"""Chapter 01 — tensors, gradients and the training loop.

The chapter builds one SGD step by hand: a linear layer (forward pass), the mean squared error
and its gradient (loss and backward pass), a finite-difference check that the hand-written
gradient is right, and the update rule. :func:`train_linear_regression` then strings them into
a small mini-batch training loop whose loss history the book plots.

Shape legend: ``B`` batch, ``in`` input features, ``out`` output features.
"""

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "linear",
    "mse_loss_and_grad",
    "numerical_gradient",
    "sgd_step",
    "train_linear_regression",
]


# ---------------------------------------------------------------------------------------------
# Forward pass: a linear layer is one matrix multiplication plus a broadcast bias.
# ---------------------------------------------------------------------------------------------


def linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
) -> Tensor:
    """y = x Wᵀ + b, argument for argument like ``F.linear``.

    Args:
        x: (..., in). Any number of leading dimensions
            (batch, sequence, ...).
        weight: (out, in), the PyTorch layout: one row per output feature.
        bias: (out,) or None.
    Returns:
        (..., out).
    """
    if weight.ndim != 2:
        raise ValueError(
            "weight must be 2-D (out, in), "
            f"got shape {tuple(weight.shape)}"
        )
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            "x's last dimension must equal weight.shape[1] "
            f"= {weight.shape[1]} (weight is (out, in)); "
            f"got x of shape {tuple(x.shape)}"
        )
    out = x @ weight.T  # (..., in) @ (in, out) -> (..., out)
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"bias must have shape ({weight.shape[0]},), "
                f"got {tuple(bias.shape)}"
            )
        out = out + bias  # (out,) broadcasts over every leading dimension
    return out


# ---------------------------------------------------------------------------------------------
# Loss and backward pass: the gradient of the MSE, derived by hand.
# ---------------------------------------------------------------------------------------------


def mse_loss_and_grad(
    pred: Tensor,
    target: Tensor,
) -> tuple[Tensor, Tensor]:
    """Mean squared error and its gradient with respect to ``pred``.

    loss = mean((pred - target)²) over all N elements, so
    d loss / d pred = 2 (pred - target) / N.

    Args:
        pred: any shape. target: the same shape (no broadcasting: a (B, 1)
            vs (B,) mix-up would silently build a (B, B) matrix of errors).
    Returns:
        (loss, grad): a 0-d tensor and a tensor shaped like ``pred``.
    """
    if pred.shape != target.shape:
        raise ValueError(
            "pred and target must have the same shape, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}; "
            "reshape one of them (e.g. target.view_as(pred))"
        )
    if pred.numel() == 0:
        raise ValueError(
            "mse of an empty tensor is "
            "undefined: pass at least one element"
        )
    diff = pred - target
    n = diff.numel()
    loss = (diff * diff).sum() / n
    grad = 2.0 * diff / n  # every element contributes 1/N of the mean
    return loss, grad


def numerical_gradient(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    eps: float = 1e-3,
) -> Tensor:
    """Gradient of a scalar function by central differences, in float64.

    grad[i] = (f(x + eps·eᵢ) - f(x - eps·eᵢ)) / (2·eps). The error is
    O(eps²), and float64 keeps rounding error far below it, which makes
    this a trustworthy check of a hand-written or autograd gradient.

    Args:
        f: maps a tensor shaped like ``x`` to a scalar
            (a 0-d or one-element tensor).
        x: the point; it is not modified (``f`` sees a float64 copy).
        eps: the step.
    Returns:
        float64 tensor shaped like ``x``.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    x64 = x.detach().to(torch.float64).clone()
    # a view: writing flat[i] moves x64, which is what f sees
    flat = x64.view(-1)
    grad = torch.zeros_like(flat)
    with torch.no_grad():
        for i in range(flat.numel()):
            orig = flat[i].item()
            flat[i] = orig + eps
            f_plus = _scalar(f(x64))
            flat[i] = orig - eps
            f_minus = _scalar(f(x64))
            flat[i] = orig  # restore before the next coordinate
            grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad.view_as(x64)


def _scalar(value: Tensor | float) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"f must return a scalar, got a tensor of shape {tuple(value.shape)}; "
                "reduce it first (e.g. .sum() or .mean())"
            )
        return value.item()
    return float(value)


# ---------------------------------------------------------------------------------------------
# Update: one step against the gradient.
# ---------------------------------------------------------------------------------------------


def sgd_step(
    params: list[Tensor],
    grads: list[Tensor],
    lr: float,
) -> list[Tensor]:
    """One step of plain gradient descent: p ← p - lr · g, returned as new
    tensors.

    The gradient points uphill (steepest ascent), so we move the other way.
    The inputs are left untouched, which keeps the exercise free of
    in-place aliasing surprises.

    Args:
        params: tensors of any shapes. grads: one per parameter, same
            shapes.
        lr: learning rate (step size).
    Returns:
        New tensors, one per parameter.
    """
    if len(params) != len(grads):
        raise ValueError(
            f"got {len(params)} params but "
            f"{len(grads)} grads; pass one per param"
        )
    new_params = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if p.shape != g.shape:
            raise ValueError(
                f"param {i} has shape {tuple(p.shape)} "
                f"but its grad has {tuple(g.shape)}"
            )
        new_params.append(p.detach() - lr * g.detach())
    return new_params


# ---------------------------------------------------------------------------------------------
# The training loop: batches → forward → loss → backward (chain rule by hand) → update.
# ---------------------------------------------------------------------------------------------


def train_linear_regression(
    x: Tensor,
    y: Tensor,
    *,
    lr: float = 0.1,
    epochs: int = 20,
    batch_size: int = 16,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, list[float]]:
    """Fit y ≈ linear(x, W, b) by mini-batch SGD built from this chapter's
    functions.

    Weights start at zero (the problem is convex, so no random start is
    needed); the generator only shuffles the examples at the start of every
    epoch. The backward pass is the chain rule written out: with
    g = d loss / d pred of shape (B, out), d loss / dW = gᵀ x and
    d loss / db = Σ_B g.

    Args:
        x: (N, in). y: (N, out).
        lr: learning rate. epochs: passes over the data. batch_size:
            examples per step (the last batch of an epoch may be smaller).
        generator: the only source of randomness (the shuffling order).
    Returns:
        (weight (out, in), bias (out,), losses): ``losses`` holds the
        mini-batch loss of every iteration, before its update.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            "x must be (N, in) and y (N, out) with the "
            f"same N, got {tuple(x.shape)} and {tuple(y.shape)}; "
            "use y.unsqueeze(-1) for a single output"
        )
    if batch_size < 1 or epochs < 0:
        raise ValueError(
            "batch_size must be >= 1 and epochs "
            f">= 0, got {batch_size}, {epochs}"
        )
    n, in_features = x.shape
    out_features = y.shape[1]
    weight = torch.zeros(out_features, in_features, dtype=x.dtype)
    bias = torch.zeros(out_features, dtype=x.dtype)
    losses: list[float] = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx]  # (B, in), (B, out)
            pred = linear(xb, weight, bias)  # (B, out)
            loss, g = mse_loss_and_grad(pred, yb)  # g: (B, out)
            grad_w = g.T @ xb  # (out, B) @ (B, in) -> (out, in)
            grad_b = g.sum(dim=0)  # (out,)
            weight, bias = sgd_step([weight, bias], [grad_w, grad_b], lr)
            losses.append(loss.item())
    return weight, bias, losses
