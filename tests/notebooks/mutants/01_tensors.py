"""Wrong and alternative implementations for 01_tensors (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

VARIANTS = [
    # linear ----------------------------------------------------------------------------------
    mutant(
        "linear",
        "weight not transposed",
        """
        def linear(x, weight, bias=None):
            out = x @ weight
            return out if bias is None else out + bias
    """,
        expect=r"shape|transpose",
    ),
    mutant(
        "linear",
        "bias ignored",
        """
        def linear(x, weight, bias=None):
            return x @ weight.T
    """,
        expect=r"bias is not added",
    ),
    mutant(
        "linear",
        "only works for 2-D x (mm)",
        """
        def linear(x, weight, bias=None):
            out = torch.mm(x, weight.t())
            return out if bias is None else out + bias
    """,
        expect=r"raised RuntimeError",
    ),
    mutant(
        "linear",
        "calls F.linear",
        """
        import torch.nn.functional as F

        def linear(x, weight, bias=None):
            return F.linear(x, weight, bias)
    """,
        expect=r"does not allow",
    ),
    alternative(
        "linear",
        "einsum",
        """
        def linear(x, weight, bias=None):
            out = torch.einsum("...i,oi->...o", x, weight)
            return out if bias is None else out + bias
    """,
    ),
    # mse_loss_and_grad ------------------------------------------------------------------------
    mutant(
        "mse_loss_and_grad",
        "gradient not divided by N",
        """
        def mse_loss_and_grad(pred, target):
            diff = pred - target
            return (diff ** 2).mean(), 2 * diff
    """,
        expect=r"not divided by N",
    ),
    mutant(
        "mse_loss_and_grad",
        "gradient sign flipped",
        """
        def mse_loss_and_grad(pred, target):
            diff = pred - target
            return (diff ** 2).mean(), 2 * (target - pred) / diff.numel()
    """,
        expect=r"wrong sign",
    ),
    mutant(
        "mse_loss_and_grad",
        "loss summed instead of averaged",
        """
        def mse_loss_and_grad(pred, target):
            diff = pred - target
            return (diff ** 2).sum(), 2 * diff / diff.numel()
    """,
        expect=r"summed",
    ),
    mutant(
        "mse_loss_and_grad",
        "gradient by autograd",
        """
        def mse_loss_and_grad(pred, target):
            p = pred.detach().requires_grad_()
            loss = ((p - target) ** 2).mean()
            loss.backward()
            return loss.detach(), p.grad
    """,
        expect=r"does not allow",
    ),
    alternative(
        "mse_loss_and_grad",
        "torch.mean and a loop-free formula",
        """
        def mse_loss_and_grad(pred, target):
            n = pred.numel()
            diff = pred.sub(target)
            return torch.mean(diff.square()), diff.mul(2.0 / n)
    """,
    ),
    # numerical_gradient -----------------------------------------------------------------------
    mutant(
        "numerical_gradient",
        "forward difference",
        """
        def numerical_gradient(f, x, eps=1e-3):
            x64 = x.detach().double().clone()
            base = float(f(x64))
            grad = torch.zeros_like(x64).view(-1)
            for i in range(grad.numel()):
                y = x64.clone().view(-1)
                y[i] += eps
                grad[i] = (float(f(y.view_as(x64))) - base) / eps
            return grad.view_as(x64)
    """,
        expect=r"forward difference",
    ),
    mutant(
        "numerical_gradient",
        "divides by eps instead of 2 eps",
        """
        def numerical_gradient(f, x, eps=1e-3):
            x64 = x.detach().double().clone()
            grad = torch.zeros_like(x64).view(-1)
            for i in range(grad.numel()):
                up, down = x64.clone().view(-1), x64.clone().view(-1)
                up[i] += eps
                down[i] -= eps
                grad[i] = (float(f(up.view_as(x64))) - float(f(down.view_as(x64)))) / eps
            return grad.view_as(x64)
    """,
        expect=r"instead of 2",
    ),
    mutant(
        "numerical_gradient",
        "float32 arithmetic",
        """
        def numerical_gradient(f, x, eps=1e-3):
            x32 = x.detach().float().clone()
            grad = torch.zeros_like(x32).view(-1)
            for i in range(grad.numel()):
                up, down = x32.clone().view(-1), x32.clone().view(-1)
                up[i] += eps
                down[i] -= eps
                grad[i] = (f(up.view_as(x32)) - f(down.view_as(x32))) / (2 * eps)
            return grad.view_as(x32)
    """,
        expect=r"float64",
    ),
    mutant(
        "numerical_gradient",
        "perturbs the caller's x in place",
        """
        def numerical_gradient(f, x, eps=1e-3):
            flat = x.view(-1)
            grad = torch.zeros(flat.numel(), dtype=torch.float64)
            for i in range(flat.numel()):
                flat[i] += eps
                up = float(f(x.double()))
                flat[i] -= 2 * eps
                down = float(f(x.double()))
                grad[i] = (up - down) / (2 * eps)
            return grad.view(x.shape)
    """,
        expect=r"in place",
    ),
    alternative(
        "numerical_gradient",
        "a stack of basis directions",
        """
        def numerical_gradient(f, x, eps=1e-3):
            x64 = x.detach().to(torch.float64)
            basis = torch.eye(x64.numel(), dtype=torch.float64).view(-1, *x64.shape)
            diffs = [float(f(x64 + eps * e)) - float(f(x64 - eps * e)) for e in basis]
            return torch.tensor(diffs, dtype=torch.float64).view(x64.shape) / (2 * eps)
    """,
    ),
    # sgd_step ---------------------------------------------------------------------------------
    mutant(
        "sgd_step",
        "steps uphill",
        """
        def sgd_step(params, grads, lr):
            return [p + lr * g for p, g in zip(params, grads)]
    """,
        expect=r"uphill",
    ),
    mutant(
        "sgd_step",
        "updates in place",
        """
        def sgd_step(params, grads, lr):
            for p, g in zip(params, grads):
                p -= lr * g
            return params
    """,
        expect=r"in place",
    ),
    mutant(
        "sgd_step",
        "forgets the learning rate",
        """
        def sgd_step(params, grads, lr):
            return [p - g for p, g in zip(params, grads)]
    """,
        expect=r"learning rate is not applied",
    ),
    mutant(
        "sgd_step",
        "uses torch.optim.SGD",
        """
        def sgd_step(params, grads, lr):
            new = [p.clone().requires_grad_() for p in params]
            opt = torch.optim.SGD(new, lr=lr)
            for p, g in zip(new, grads):
                p.grad = g.clone()
            opt.step()
            return [p.detach() for p in new]
    """,
        expect=r"does not allow",
    ),
    alternative(
        "sgd_step",
        "a loop with torch.sub",
        """
        def sgd_step(params, grads, lr):
            out = []
            for i in range(len(params)):
                out.append(torch.sub(params[i], grads[i], alpha=lr))
            return out
    """,
    ),
]
