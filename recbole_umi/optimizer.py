"""The trainer's Adam and AdamW under ``fused_optimizer``: torch's fused kernel (one operation
for all parameters a step), called by a step of a few lines.

torch's ``Adam.step`` with ``fused=True`` spends about as long in Python as the kernel itself
takes on the plugin's models: for MIND on ml-1m (9 parameters, 110,000 entries) 191 µs a step
against 123 µs for the step here (95 µs of it the kernel and the step counts), at 1 thread,
where the whole training step at batch 128 takes about 1.7 ms (docs/benchmarks.md, "Adam's
step called directly"). :class:`FusedAdam` and :class:`FusedAdamW` are torch's classes (their
settings, state, ``state_dict`` and checkpoints the same) whose ``step`` makes that call
itself, the same update to the bit, and leaves to torch's own step what it does not cover: a
closure, optimizer hooks (its own or global), a running profiler (torch's step labels
itself), a gradient scaler's ``grad_scale``/``found_inf``, a step being compiled,
``amsgrad``, ``capturable``, ``differentiable``, a tensor learning rate or betas, sparse or
complex gradients, parameters of more than one device or dtype, a CUDA graph being captured
and accelerators other than CUDA. The private parts it calls are checked against torch's step
once per process (:func:`direct_step_available`); where they are missing or differ, every step
is torch's.
"""

from __future__ import annotations

import functools

import torch
from torch.optim import Adam, AdamW, Optimizer
from torch.optim import optimizer as torch_optimizer

__all__ = ["FusedAdam", "FusedAdamW", "with_fused_kernel", "direct_step_available"]


class _DirectStep:
    """``step`` for a fused Adam or AdamW: the kernel called directly where that is torch's
    own update (the module docstring), torch's step otherwise."""

    def step(self, closure=None):
        calls = None if closure is not None or not self._plain() else self._kernel_calls()
        if calls is None:
            return _torch_step(self, closure)
        self._update(calls)
        return None

    # Optimizer.__init__ wraps a class's step in its hooks and profiler label unless marked
    # so; this step runs only where neither applies and hands over to the wrapped one otherwise
    step.hooked = True

    def _plain(self) -> bool:
        """No hook, profiler, gradient scaler or compiler that torch's step would serve, no
        group setting the direct call leaves out, and the direct call checked on this torch."""
        if (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or getattr(torch_optimizer, "_global_optimizer_pre_hooks", True)
                or getattr(torch_optimizer, "_global_optimizer_post_hooks", True)
                or torch.autograd._profiler_enabled() or torch.compiler.is_compiling()
                or getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None) is not None):
            return False
        return all(
            group["fused"] and not (group["amsgrad"] or group["capturable"] or group["differentiable"]
                                    or torch.is_tensor(group["lr"]) or any(map(torch.is_tensor, group["betas"])))
            for group in self.param_groups) and direct_step_available()

    def _update(self, calls: list) -> None:
        """The step counts and the fused kernel, for each group of :meth:`_kernel_calls`."""
        for group, (params, grads, exp_avgs, exp_avg_sqs, steps) in calls:
            beta1, beta2 = group["betas"]
            decoupled = group.get("decoupled_weight_decay", isinstance(self, AdamW))  # the key in newer torch's Adam
            kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
            with torch.no_grad():
                torch._foreach_add_(steps, 1)
                kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                       beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                       maximize=group["maximize"], grad_scale=None, found_inf=None)

    def _kernel_calls(self) -> list | None:
        """Each group's parameters with gradients and their state (made as torch's
        ``Adam._init_group`` makes a fused Adam's), or None where torch's step must do it:
        sparse or complex gradients, parameters of more than one device or dtype."""
        calls = []
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if grad.is_sparse or p.is_complex() or (params and (p.device != params[0].device
                                                                     or p.dtype != params[0].dtype)):
                    return None
                # a CUDA graph being captured (torch's step checks it) or another accelerator
                if p.device.type != "cpu" and (p.device.type != "cuda" or torch.cuda.is_current_stream_capturing()):
                    return None
                state = self.state[p]
                if not state:
                    torch_optimizer._device_dtype_check_for_fused(p)
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if params:
                calls.append((group, (params, grads, exp_avgs, exp_avg_sqs, steps)))
        return calls


@functools.cache
def direct_step_available() -> bool:
    """Whether this torch has the private parts the direct step calls and they make torch's
    own fused update: checked once, two steps of a small Adam and AdamW on the CPU against
    torch's step (unwrapped: no hook or profiler sees them); another torch version, where the
    parts are missing or differ: every step is torch's own."""
    if not hasattr(torch_optimizer, "_device_dtype_check_for_fused"):
        return False
    try:
        for torch_kind, kind in ((Adam, FusedAdam), (AdamW, FusedAdamW)):
            updated = []
            for optimizer_kind in (torch_kind, kind):
                weight = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 5, device="cpu", dtype=torch.float32))
                optimizer = optimizer_kind([weight], lr=0.1, weight_decay=0.1, fused=True)
                for step in range(2):
                    weight.grad = torch.linspace(0.5, -0.3 * step, 5, device="cpu", dtype=torch.float32)
                    if optimizer_kind is kind:  # the direct call itself, whatever _plain would say
                        optimizer._update(optimizer._kernel_calls())
                    else:  # torch's step without the hooks-and-profiler wrapper Optimizer.__init__ put around it
                        torch_kind.step.__wrapped__(optimizer)
                updated.append(weight.detach())
            if not torch.equal(*updated):
                return False
    except (AttributeError, TypeError, RuntimeError):
        return False
    return True


def _torch_step(optimizer: Optimizer, closure):
    """torch's own step of ``optimizer``'s class, in its hooks and profiler label."""
    step = (AdamW if isinstance(optimizer, AdamW) else Adam).step
    if not getattr(step, "hooked", False):  # no Adam made yet: Optimizer.__init__ wraps it on the first
        step = Optimizer.profile_hook_step(step)
    return step(optimizer, closure)


def _fused_settings(kind: str, settings: dict) -> dict:
    if settings.get("fused") is False or settings.get("foreach"):
        raise ValueError(f"{kind} is the fused kernel: fused=False and foreach=True do not apply")
    return {**settings, "fused": True, "foreach": None}


class FusedAdam(_DirectStep, Adam):
    """``torch.optim.Adam(..., fused=True)`` with the direct step (the module docstring)."""

    def __init__(self, params, *args, **settings):
        super().__init__(params, *args, **_fused_settings("FusedAdam", settings))


class FusedAdamW(_DirectStep, AdamW):
    """``torch.optim.AdamW(..., fused=True)`` with the direct step (the module docstring)."""

    def __init__(self, params, *args, **settings):
        super().__init__(params, *args, **_fused_settings("FusedAdamW", settings))


def with_fused_kernel(optimizer: Optimizer) -> Optimizer:
    """``optimizer`` as ``fused_optimizer`` makes it: an ``Adam`` or ``AdamW`` becomes a
    :class:`FusedAdam` or :class:`FusedAdamW` over the same parameter groups and settings, its
    defaults too (for groups added later; before any step: its state is not carried); any other
    optimizer is returned as it is."""
    kind = {Adam: FusedAdam, AdamW: FusedAdamW}.get(type(optimizer))
    if kind is None:
        return optimizer
    if any(optimizer.state.values()):
        raise ValueError("with_fused_kernel: the optimizer has taken steps already; build the fused one first")
    left_out = ("fused", "foreach") + (("decoupled_weight_decay",) if kind is FusedAdamW else ())  # AdamW sets it
    defaults = {key: value for key, value in optimizer.defaults.items() if key not in left_out}
    return kind([{**group, "fused": True, "foreach": None} for group in optimizer.param_groups], **defaults)
