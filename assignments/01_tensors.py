# %% [markdown]
# # 01 · Tensors, gradients and one step of training
#
# **Recap.** A linear layer is one matrix multiplication plus a bias that broadcasts over every
# leading axis. The loss measures how wrong the prediction is; its gradient points uphill (the
# direction of steepest ascent), so a training step moves the parameters the other way. You
# will write the forward pass, the loss and its gradient *by hand*, check the gradient with
# finite differences, and take one SGD step. Read
# [chapter 1, *Tensors, gradients and the training loop*](../../book/01_tensors.md) (published
# as `01_tensors.html`) first.
#
# Four functions, 12 points. Run a solution cell, then the test cell below it; from a terminal,
# `course check exercises/01_tensors/01_tensors.ipynb` runs all the visible tests, and so does the
# `G.check_all()` cell near the end.
#
# Rules: no autograd (`.backward()`, `torch.autograd.grad`), no `F.linear`/`nn.Linear`, no
# `F.mse_loss`, no `torch.optim`, and not the course's reference package.

# %% demo
# Colab and Binder start without the course package: install it from the course repository, at
# the release that matches this notebook. Where `course_lib` is importable already (your own
# machine, the grader), this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_lib") is None:
    package = "course_lib @ git+{{COURSE_REPOSITORY_URL}}@{{COURSE_RELEASE_TAG}}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)


# %% setup
import torch
from torch import Tensor

# %% [markdown]
# ## 1. A linear layer
#
# `y = x Wᵀ + b` with PyTorch's layout: `weight` is `(out, in)`, one row per output feature,
# and `x` may have any number of leading axes `(…, in)`.


# %% solution linear
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x Wᵀ + b, like ``F.linear``: (..., in), (out, in), (out,) -> (..., out)."""
    ### BEGIN SOLUTION
    out = x @ weight.T  # (..., in) @ (in, out) -> (..., out)
    if bias is not None:
        out = out + bias  # (out,) broadcasts over the leading axes
    return out
    ### END SOLUTION


# %% tests test_linear points=3
from course_lib import grading as G
from course_lib import tensors as ref

FORBIDDEN = {
    "torch.nn.functional.linear": "multiply by the weight yourself",
    "torch.nn.Linear": "multiply by the weight yourself",
} | G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "weight is (out, in), as in nn.Linear: multiply x by its transpose",
        lambda x, weight, bias=None: x @ weight + (0 if bias is None else bias),
    ),
    G.Mistake("the bias is not added", lambda x, weight, bias=None: x @ weight.T),
    G.Mistake("the bias is subtracted", lambda x, weight, bias=None: x @ weight.T - bias),
]
# Two inputs with 2 features, 3 outputs: row j of W holds the weights of output j.
x = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
b = torch.tensor([0.5, -0.5, 0.0])
# A square weight: W and Wᵀ give the same shape but different values.
W_square = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
# A batch of sequences (B=2, T=3, in=2): the layer acts on the last axis only.
g = torch.Generator().manual_seed(0)
seq = torch.randn(2, 3, 2, generator=g)
cases = [
    G.Case(x, W, b, label="worked example"),
    G.Case(x, W, label="no bias"),
    G.Case(x, W_square, label="square weight"),
    G.Case(seq, W, b, label="leading axes (B, T, in)"),
]
assert G.check_function(linear, ref.linear, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("01/linear")
hidden = [
    G.Case(
        torch.randn(5, 7, generator=g), torch.randn(4, 7, generator=g), torch.randn(4, generator=g)
    ),
    G.Case(
        torch.randn(3, generator=g),
        torch.randn(3, 3, generator=g),
        torch.randn(3, generator=g),
        label="one vector",
    ),
    G.Case(
        torch.randn(2, 2, 3, 6, generator=g, dtype=torch.float64),
        torch.randn(5, 6, generator=g, dtype=torch.float64),
        label="4-D, float64",
    ),
]
assert G.check_function(linear, ref.linear, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Mean squared error and its gradient
#
# `loss = mean((pred − target)²)` over all `N` elements. Differentiate by hand: each element
# contributes `1/N` of the mean, so `∂loss/∂pred = 2 (pred − target) / N`. Return
# `(loss, grad)`: a 0-d tensor and a tensor shaped like `pred`.


# %% solution mse_loss_and_grad
def mse_loss_and_grad(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Mean squared error and its gradient with respect to ``pred`` (same shape as pred)."""
    ### BEGIN SOLUTION
    diff = pred - target
    n = diff.numel()
    loss = (diff * diff).sum() / n
    grad = 2.0 * diff / n
    return loss, grad
    ### END SOLUTION


# %% tests test_mse_loss_and_grad-loss points=1
from course_lib import grading as G
from course_lib import tensors as ref

FORBIDDEN = G.NO_AUTOGRAD | {"torch.nn.functional.mse_loss": "write the mean yourself"}
FORBIDDEN |= G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "the squared errors are summed, not averaged", lambda p, t: (((p - t) ** 2).sum(), p)
    ),
    G.Mistake("the errors are not squared", lambda p, t: ((p - t).mean(), p)),
    G.Mistake(
        "that is the root of the mean squared error", lambda p, t: (((p - t) ** 2).mean().sqrt(), p)
    ),
]
# Errors 1, -2 and 0: squares 1, 4, 0, mean 5/3.
pred, target = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])
g = torch.Generator().manual_seed(1)
batch = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
cases = [G.Case(pred, target, label="worked example"), G.Case(*batch, label="(4, 3) batch")]
assert G.check_function(
    mse_loss_and_grad,
    ref.mse_loss_and_grad,
    cases,
    select=0,
    what="the loss",
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("01/mse-loss")
hidden = [
    G.Case(torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)),
    G.Case(torch.randn(1, generator=g), torch.randn(1, generator=g), label="one element"),
]
assert G.check_function(
    mse_loss_and_grad,
    ref.mse_loss_and_grad,
    hidden,
    select=0,
    what="the loss",
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### END HIDDEN TESTS

# %% tests test_mse_loss_and_grad-grad points=2
from course_lib import grading as G
from course_lib import tensors as ref

FORBIDDEN = G.NO_AUTOGRAD | {"torch.nn.functional.mse_loss": "write the mean yourself"}
FORBIDDEN |= G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "the gradient is not divided by N, the number of elements averaged",
        lambda p, t: (None, 2 * (p - t)),
    ),
    G.Mistake(
        "the factor 2 from d(u²)/du = 2u is missing", lambda p, t: (None, (p - t) / p.numel())
    ),
    G.Mistake(
        "the gradient has the wrong sign: differentiate with respect to pred, not target",
        lambda p, t: (None, 2 * (t - p) / p.numel()),
    ),
    G.Mistake(
        "the gradient is divided by the batch size only; the mean runs over all N elements",
        lambda p, t: (None, 2 * (p - t) / p.shape[0]),
    ),
]
# d/dpred of mean((pred - target)²) at errors [1, -2, 0] is 2·[1, -2, 0] / 3.
pred, target = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])
g = torch.Generator().manual_seed(1)
batch = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
cases = [G.Case(pred, target, label="worked example"), G.Case(*batch, label="(4, 3) batch")]
assert G.check_function(
    mse_loss_and_grad,
    ref.mse_loss_and_grad,
    cases,
    select=1,
    what="the gradient",
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("01/mse-grad")
hidden = [
    G.Case(torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)),
    G.Case(
        torch.randn(6, 1, generator=g, dtype=torch.float64),
        torch.randn(6, 1, generator=g, dtype=torch.float64),
        label="float64",
    ),
]
assert G.check_function(
    mse_loss_and_grad,
    ref.mse_loss_and_grad,
    hidden,
    select=1,
    what="the gradient",
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Checking a gradient numerically
#
# Central differences: `grad[i] = (f(x + eps·eᵢ) − f(x − eps·eᵢ)) / (2·eps)`, one coordinate at
# a time, in float64 (the error is O(eps²) and float32 rounding would swamp it). Do not change
# the caller's `x`: work on a float64 copy.


# %% solution numerical_gradient
def numerical_gradient(f, x: Tensor, eps: float = 1e-3) -> Tensor:
    """Gradient of the scalar function ``f`` at ``x`` by central differences; float64, shaped
    like ``x``."""
    ### BEGIN SOLUTION
    x64 = x.detach().to(torch.float64).clone()
    flat = x64.view(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        orig = flat[i].item()
        flat[i] = orig + eps
        f_plus = float(f(x64))
        flat[i] = orig - eps
        f_minus = float(f(x64))
        flat[i] = orig
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.view_as(x64)
    ### END SOLUTION


# %% tests test_numerical_gradient points=3
from course_lib import grading as G
from course_lib import tensors as ref

FORBIDDEN = G.NO_AUTOGRAD | G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "that is a forward difference (f(x+eps) - f(x)) / eps; use the central difference "
        "(f(x+eps) - f(x-eps)) / (2·eps)",
        lambda f, x, eps=1e-3: torch.stack(
            [
                (f(x.double() + eps * e) - f(x.double())) / eps
                for e in torch.eye(x.numel(), dtype=torch.float64).view(-1, *x.shape)
            ]
        ).view(x.shape),
    ),
    G.Mistake(
        "the difference is divided by eps instead of 2·eps",
        lambda f, x, eps=1e-3: 2 * ref.numerical_gradient(f, x, eps),
    ),
]
# f(x) = Σ x², whose gradient is 2x.
square = lambda x: (x**2).sum()  # noqa: E731
# f(x) = Σ sin(x) · x₀: every coordinate's gradient depends on the others.
mixed = lambda x: (torch.sin(x) * x.flatten()[0]).sum()  # noqa: E731
cases = [
    G.Case(square, torch.tensor([1.0, -2.0, 3.0]), label="f = sum of squares"),
    G.Case(mixed, torch.tensor([[0.5, 1.0], [-1.0, 2.0]]), label="f = sum(sin(x)) · x[0, 0]"),
    G.Case(square, torch.tensor([1.0, 2.0]), eps=0.1, label="eps=0.1"),
]
assert G.check_function(
    numerical_gradient,
    ref.numerical_gradient,
    cases,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    rtol=1e-6,
    atol=1e-8,
)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("01/numerical_gradient")
cubic = lambda x: (x**3).sum() + x.prod()  # noqa: E731
hidden = [
    G.Case(cubic, torch.randn(2, 3, generator=g), label="cubic"),
    G.Case(
        lambda x: torch.exp(x).sum(), torch.randn(4, generator=g, dtype=torch.float64), eps=1e-2
    ),
    G.Case(square, torch.tensor(1.5), label="0-d x"),
]
assert G.check_function(
    numerical_gradient,
    ref.numerical_gradient,
    hidden,
    forbidden=FORBIDDEN,
    mistakes=MISTAKES,
    rtol=1e-6,
    atol=1e-8,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. One SGD step
#
# `p ← p − lr · g` for every parameter. Return **new** tensors and leave the inputs untouched
# (no `-=`): the caller may still need the old values.


# %% solution sgd_step
def sgd_step(params: list[Tensor], grads: list[Tensor], lr: float) -> list[Tensor]:
    """One gradient-descent step: a new list of new tensors ``p - lr * g``."""
    ### BEGIN SOLUTION
    return [p - lr * g for p, g in zip(params, grads)]
    ### END SOLUTION


# %% tests test_sgd_step points=3
from course_lib import grading as G
from course_lib import tensors as ref

FORBIDDEN = {"torch.optim.SGD": "write the update yourself"} | G.no_reference(ref)
MISTAKES = [
    G.Mistake(
        "the step goes uphill: the gradient points up, so subtract it",
        lambda params, grads, lr: [p + lr * g for p, g in zip(params, grads)],
    ),
    G.Mistake(
        "the learning rate is not applied",
        lambda params, grads, lr: [p - g for p, g in zip(params, grads)],
    ),
    G.Mistake(
        "the learning rate divides instead of multiplies",
        lambda params, grads, lr: [p - g / lr for p, g in zip(params, grads)],
    ),
]
# w = [1, 2] with gradient [10, -10] and lr 0.1 moves to [0, 3]; b = 0.5 with gradient 1.
w, b = torch.tensor([1.0, 2.0]), torch.tensor(0.5)
gw, gb = torch.tensor([10.0, -10.0]), torch.tensor(1.0)
cases = [
    G.Case([w, b], [gw, gb], 0.1, label="worked example"),
    G.Case([torch.ones(2, 3)], [torch.full((2, 3), 0.5)], 1.0, label="a matrix, lr=1"),
]
assert G.check_function(sgd_step, ref.sgd_step, cases, forbidden=FORBIDDEN, mistakes=MISTAKES)
### BEGIN HIDDEN TESTS
g = G.hidden_generator("01/sgd_step")
params = [
    torch.randn(3, 4, generator=g),
    torch.randn(4, generator=g),
    torch.randn(2, 2, 2, generator=g),
]
grads = [torch.randn_like(p) for p in params]
hidden = [G.Case(params, grads, 0.03), G.Case(params[:1], grads[:1], 0.0, label="lr=0")]
assert G.check_function(sgd_step, ref.sgd_step, hidden, forbidden=FORBIDDEN, mistakes=MISTAKES)
### END HIDDEN TESTS

# %% [markdown]
# ## Explore: your functions train a model
#
# The loop below fits `y = 3x − 1` (plus noise) with *your* `linear`, `mse_loss_and_grad` and
# `sgd_step`; the gradient of the weights follows from the chain rule. Change the learning rate
# and watch the loss curve. Not graded.

# %% demo
import matplotlib.pyplot as plt

demo_gen = torch.Generator().manual_seed(0)
xs = torch.rand(64, 1, generator=demo_gen) * 2 - 1
ys = 3 * xs - 1 + 0.1 * torch.randn(64, 1, generator=demo_gen)


def train(lr: float, steps: int = 40) -> list[float]:
    weight, bias = torch.zeros(1, 1), torch.zeros(1)
    losses = []
    for _ in range(steps):
        pred = linear(xs, weight, bias)  # (64, 1)
        loss, grad = mse_loss_and_grad(pred, ys)  # grad: (64, 1)
        # chain rule through pred = x Wᵀ + b
        weight, bias = sgd_step([weight, bias], [grad.T @ xs, grad.sum(0)], lr)
        losses.append(float(loss))
    return losses


try:
    curves = {lr: train(lr) for lr in (0.05, 0.2, 0.8)}
except NotImplementedError:
    print("Implement linear, mse_loss_and_grad and sgd_step above, then run this cell again.")
else:
    fig, ax = plt.subplots(figsize=(5, 3))
    for lr, losses in curves.items():
        ax.plot(losses, label=f"lr = {lr}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE loss")
    ax.legend()
    plt.show()

# %% [markdown]
# ## Your points so far
#
# Run every cell above first. The cell below runs this notebook's visible tests again and
# lists each test's points, as `course check` does; the hidden tests run only when your work
# is graded.

# %% demo
from course_lib import grading as G

G.check_all()

# %% [markdown]
# ## Written questions
#
# Answer in the cell below each question, in your own words. A person grades these
# against a rubric; `course check` does not.

# %% written written_step_sign points=2
# **Question (2 points).** Your `sgd_step` subtracts `lr * grad`. Explain in two to four sentences why the step goes *against* the gradient, and what happens to the loss when the learning rate is far too large.
# RUBRIC:
# - 1 point: the gradient points in the direction in which the loss grows fastest, so a small step along −grad lowers the loss (first-order Taylor argument or the slope picture).
# - 1 point: a learning rate far too large overshoots the minimum: the loss oscillates or grows (diverges) instead of falling.
# - No point for restating the update formula without a reason.

# %% written written_numerical_check points=1
# **Question (1 point).** Why does `numerical_gradient` use the central difference `(f(x+eps) − f(x−eps)) / 2eps` rather than `(f(x+eps) − f(x)) / eps`, and why can `eps` not be made arbitrarily small in floating point?
# RUBRIC:
# - 1 point for both: the central difference's error is O(eps²) instead of O(eps); with a tiny eps the difference f(x+eps) − f(x−eps) is lost to rounding (cancellation), which is why the function works in float64 with a moderate eps.

# %% [markdown]
# ## Recap
#
# - `linear` multiplies by `Wᵀ` because PyTorch stores one row per output feature.
# - The MSE gradient `2 (pred − target) / N` comes from the chain rule, and central differences
#   in float64 confirm it without trusting any derivation.
# - A step goes *against* the gradient, scaled by the learning rate, and makes new tensors.
#
# More in [chapter 1](../../book/01_tensors.md).
