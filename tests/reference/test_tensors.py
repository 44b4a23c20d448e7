"""Chapter 01 reference code against torch: F.linear, autograd and torch.optim.SGD."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from course_lib.tensors import (
    linear,
    mse_loss_and_grad,
    numerical_gradient,
    sgd_step,
    train_linear_regression,
)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("lead", [(), (5,), (2, 3), (2, 3, 4)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_F_linear(gen, lead, with_bias):
    x = torch.randn(*lead, 7, generator=gen)
    weight = torch.randn(4, 7, generator=gen)  # (out, in): a transpose bug changes the shape
    bias = torch.randn(4, generator=gen) if with_bias else None
    out = linear(x, weight, bias)
    assert out.shape == (*lead, 4)
    assert_close(out, F.linear(x, weight, bias))


def test_linear_square_weight_is_not_transposed_the_wrong_way(gen):
    # with in == out the shapes cannot catch x @ W instead of x @ W.T; the values can
    x = torch.randn(3, 5, generator=gen)
    weight = torch.randn(5, 5, generator=gen)
    assert_close(linear(x, weight), F.linear(x, weight))


def test_linear_rejects_mismatched_shapes(gen):
    with pytest.raises(ValueError, match="weight.shape"):
        linear(torch.randn(2, 3, generator=gen), torch.randn(4, 5, generator=gen))
    with pytest.raises(ValueError, match="bias"):
        linear(torch.randn(2, 5), torch.randn(4, 5), torch.randn(5))


@pytest.mark.parametrize("shape", [(1,), (8,), (4, 3), (2, 3, 5)])
def test_mse_loss_and_grad_match_autograd(gen, shape):
    pred = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randn(*shape, generator=gen, dtype=torch.float64)
    loss, grad = mse_loss_and_grad(pred.detach(), target)
    expected = F.mse_loss(pred, target)
    expected.backward()
    assert loss.shape == ()
    assert_close(loss, expected.detach())
    assert_close(grad, pred.grad)  # catches a missing 2 or a missing 1/N


def test_mse_refuses_to_broadcast():
    with pytest.raises(ValueError, match="same shape"):
        mse_loss_and_grad(torch.zeros(4, 1), torch.zeros(4))


def test_numerical_gradient_matches_autograd(gen):
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 2, generator=gen, dtype=torch.float64)

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(t @ w).pow(3).sum() + (t * t).mean()

    x_auto = x.clone().requires_grad_()
    f(x_auto).backward()
    num = numerical_gradient(f, x, eps=1e-5)  # truncation error ~eps², tiny in float64
    assert num.dtype == torch.float64 and num.shape == x.shape
    assert_close(num, x_auto.grad, rtol=1e-7, atol=1e-8)


def test_numerical_gradient_is_central_and_in_float64():
    # f(x) = x³ at x = 1: central differences give 3 + eps², a forward difference 3 + 3 eps
    x = torch.tensor([1.0], dtype=torch.float32)
    g = numerical_gradient(lambda t: (t**3).sum(), x, eps=1e-3)
    assert g.dtype == torch.float64
    assert abs(g.item() - (3 + 1e-6)) < 1e-9
    assert x.item() == 1.0  # the input is not moved


def test_numerical_gradient_checks_the_hand_written_mse_gradient(gen):
    pred = torch.randn(5, generator=gen, dtype=torch.float64)
    target = torch.randn(5, generator=gen, dtype=torch.float64)
    _, grad = mse_loss_and_grad(pred, target)
    num = numerical_gradient(lambda p: mse_loss_and_grad(p, target)[0], pred)
    assert_close(grad, num)


def test_numerical_gradient_requires_scalar_output():
    with pytest.raises(ValueError, match="scalar"):
        numerical_gradient(lambda t: t * 2, torch.ones(3))


def test_sgd_step_returns_new_tensors_and_leaves_inputs_untouched(gen):
    params = [torch.randn(3, 2, generator=gen), torch.randn(2, generator=gen)]
    grads = [torch.randn(3, 2, generator=gen), torch.randn(2, generator=gen)]
    before = [p.clone() for p in params]
    grads_before = [g.clone() for g in grads]
    new = sgd_step(params, grads, lr=0.5)
    for p, b, g, gb, n in zip(params, before, grads, grads_before, new):
        assert_close(p, b, rtol=0, atol=0)
        assert_close(g, gb, rtol=0, atol=0)
        assert n.data_ptr() != p.data_ptr()
        assert_close(n, b - 0.5 * gb)  # downhill: minus, not plus


def test_sgd_step_matches_torch_optim_sgd(gen):
    params = [torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)]
    grads = [torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)]
    torch_params = [p.clone().requires_grad_() for p in params]
    for tp, g in zip(torch_params, grads):
        tp.grad = g.clone()
    torch.optim.SGD(torch_params, lr=0.1).step()
    for mine, theirs in zip(sgd_step(params, grads, 0.1), torch_params):
        assert_close(mine, theirs.detach())


def test_sgd_step_rejects_mismatched_lists():
    with pytest.raises(ValueError, match="one per param"):
        sgd_step([torch.zeros(2)], [], 0.1)
    with pytest.raises(ValueError, match="shape"):
        sgd_step([torch.zeros(2)], [torch.zeros(3)], 0.1)


def _regression_data(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    true_w = torch.tensor([[2.0, -3.0, 0.5], [1.0, 0.0, -1.0]])
    true_b = torch.tensor([0.3, -0.7])
    x = torch.randn(64, 3, generator=gen)
    y = F.linear(x, true_w, true_b) + 0.01 * torch.randn(64, 2, generator=gen)
    return x, y, true_w, true_b


def test_train_linear_regression_matches_torch_training_loop(gen):
    x, y, _, _ = _regression_data(gen)
    state = gen.get_state()
    weight, bias, losses = train_linear_regression(
        x, y, lr=0.1, epochs=3, batch_size=10, generator=gen
    )

    # the same loop written with nn.Linear, F.mse_loss, autograd and torch.optim.SGD
    gen.set_state(state)
    model = torch.nn.Linear(3, 2)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref_losses = []
    for _ in range(3):
        order = torch.randperm(64, generator=gen)
        for start in range(0, 64, 10):  # the last batch has 4 examples
            idx = order[start : start + 10]
            loss = F.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            ref_losses.append(loss.item())
    assert len(losses) == 3 * 7
    assert_close(torch.tensor(losses), torch.tensor(ref_losses))
    assert_close(weight, model.weight.detach())
    assert_close(bias, model.bias.detach())


def test_train_linear_regression_recovers_the_true_parameters(gen):
    x, y, true_w, true_b = _regression_data(gen)
    weight, bias, losses = train_linear_regression(x, y, epochs=40, generator=gen)
    assert losses[-1] < 0.01 * losses[0]
    assert_close(weight, true_w, atol=0.02, rtol=0)
    assert_close(bias, true_b, atol=0.02, rtol=0)


def test_train_linear_regression_rejects_1d_targets(gen):
    with pytest.raises(ValueError, match="unsqueeze"):
        train_linear_regression(torch.zeros(4, 3), torch.zeros(4), generator=gen)
