"""Two-parameter ordinal reader model (SPEC.md §4.6).

P(y = l | z = j) ∝ exp(−(l − j − b_k)² / (2 σ_k²)), l ∈ {0..K−1}: reader k over-grades by b_k on
average and scatters by σ_k. Two parameters per reader instead of K(K−1) make it the model of choice for
ordinal scales (mNY 0–4, Berlin 0–3) with few reads per reader. The M-step maximises the expected
complete-data log-likelihood (plus Dirichlet pseudo-counts) over (b_k, log σ_k) for all readers at once
with L-BFGS-B and an analytic gradient; readers are independent, so the Hessian is block-diagonal.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import logsumexp

FloatArray = NDArray[np.float64]

LOG_SPREAD_BOUNDS = (np.log(0.05), np.log(20.0))


def _offsets(n_readers: int, n_classes: int, bias: FloatArray) -> FloatArray:
    """Return (R, K, K) d_kjl = l − j − b_k."""
    grade = np.arange(n_classes, dtype=np.float64)
    diff = grade[None, :] - grade[:, None]  # [j, l] = l - j
    return diff[None, :, :] - bias.reshape(n_readers, 1, 1)


def ordinal_log_confusion(bias: FloatArray, spread: FloatArray, n_classes: int) -> FloatArray:
    """Return (R, K, K) log P(y = l | z = j; b_k, σ_k) for bias, spread of shape (R,)."""
    d = _offsets(bias.size, n_classes, bias)
    logits = -(d**2) / (2.0 * spread.reshape(-1, 1, 1) ** 2)
    return np.asarray(logits - logsumexp(logits, axis=2, keepdims=True), dtype=np.float64)


def _negative_objective(theta: FloatArray, weights: FloatArray, scale: float) -> tuple[float, FloatArray]:
    """Return −Σ W log P / scale and its gradient for θ = (b_1..b_R, log σ_1..log σ_R)."""
    n_readers, n_classes, _ = weights.shape
    bias, log_spread = theta[:n_readers], theta[n_readers:]
    inv_var = np.exp(-2.0 * log_spread).reshape(-1, 1, 1)
    d = _offsets(n_readers, n_classes, bias)
    logits = -0.5 * d**2 * inv_var
    log_p = logits - logsumexp(logits, axis=2, keepdims=True)
    value = -float(np.sum(weights * log_p)) / scale
    residual = weights - weights.sum(axis=2, keepdims=True) * np.exp(log_p)  # W_jl − n_j P_jl
    grad_bias = np.sum(residual * d * inv_var, axis=(1, 2))  # ∂u/∂b = d/σ²
    grad_log_spread = np.sum(residual * d**2 * inv_var, axis=(1, 2))  # ∂u/∂log σ = d²/σ²
    return value, -np.concatenate([grad_bias, grad_log_spread]) / scale


def fit_ordinal_params(
    weights: FloatArray, bias0: FloatArray, spread0: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Maximise Σ_jl W_kjl log P(l | j; b_k, σ_k) per reader.

    weights: (R, K, K) expected counts plus pseudo-counts; bias0, spread0: (R,) warm start.
    Returns (bias, spread), each (R,); readers without weight keep their warm start.
    """
    n_readers, n_classes, _ = weights.shape
    if n_readers == 0 or n_classes < 2:
        return bias0.copy(), spread0.copy()
    theta0 = np.concatenate([bias0, np.log(spread0)])
    bounds = [(-float(n_classes), float(n_classes))] * n_readers + [LOG_SPREAD_BOUNDS] * n_readers
    scale = max(float(weights.sum()), 1.0)
    res = minimize(
        _negative_objective,
        theta0,
        args=(weights, scale),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 200, "ftol": 1e-13, "gtol": 1e-9},
    )
    theta = np.asarray(res.x, dtype=np.float64)
    return theta[:n_readers], np.exp(theta[n_readers:])
