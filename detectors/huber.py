"""A straight line through points, robust to outliers: Huber regression with its scale.

The exfiltration scorer fits log bytes against log packets across an hour's
senders (:func:`silkwatch.detectors.exfil.fit_bubble`) so that the few hosts we
look for do not drag the line towards themselves. This is scikit-learn's
``HuberRegressor`` (Owen's joint estimate of the line and the residuals' scale,
minimised by scipy's L-BFGS-B from the same start, with the same objective,
gradient and stopping rule), for one feature and unit weights. Importing
scikit-learn took 1.4 s of every ``silkwatch detect`` (about as long as the
detection of a 1 M-flow day); scipy's optimiser alone takes 0.5 s.
``tests/detectors/test_huber.py`` checks the fit against scikit-learn's, bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize


class HuberLine(NamedTuple):
    """``y ≈ intercept + slope * x``; residuals beyond ``epsilon * scale`` count as outliers."""

    slope: float
    intercept: float
    scale: float


def huber_line(
    x: np.ndarray, y: np.ndarray, *, epsilon: float = 1.35, max_iter: int = 500, tol: float = 1e-5
) -> HuberLine | None:
    """The Huber line through ``(x, y)``; None when the optimiser ends abnormally.

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> y = 2.0 * x + 1.0
    >>> y[7] = 40.0  # one outlier does not move the line
    >>> line = huber_line(x, y)
    >>> round(line.slope, 4), round(line.intercept, 4)
    (2.0, 1.0)
    """
    features = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    targets = np.asarray(y, dtype=np.float64)
    start = np.array([0.0, 0.0, 1.0])  # slope, intercept, scale
    bounds = [(-np.inf, np.inf), (-np.inf, np.inf), (np.finfo(np.float64).eps * 10, np.inf)]
    result = minimize(
        _loss_and_gradient,
        start,
        method="L-BFGS-B",
        jac=True,
        args=(features, targets, epsilon),
        options={"maxiter": max_iter, "gtol": tol},
        bounds=bounds,
    )
    if result.status == 2:  # abnormal termination (scikit-learn raises ValueError)
        return None
    slope, intercept, scale = result.x
    return HuberLine(float(slope), float(intercept), float(scale))


def _loss_and_gradient(
    w: np.ndarray, x: np.ndarray, y: np.ndarray, epsilon: float
) -> tuple[float, np.ndarray]:
    """Owen's Huber loss of ``w = (slope, intercept, scale)`` and its gradient.

    The operations, and so the rounding, of scikit-learn's ``_huber_loss_and_gradient``
    with unit sample weights and no penalty: the optimiser takes the same steps.
    """
    coef, intercept, sigma = w[:1], w[1], w[2]
    n_samples = float(len(y))
    linear_loss = y - x @ coef
    linear_loss -= intercept
    outliers_mask = np.abs(linear_loss) > epsilon * sigma
    outliers = np.abs(linear_loss)[outliers_mask]
    n_outliers = float(np.count_nonzero(outliers_mask))
    outlier_loss = 2.0 * epsilon * np.sum(outliers) - sigma * n_outliers * epsilon**2
    non_outliers = linear_loss[~outliers_mask]
    squared_loss = np.dot(non_outliers.T, non_outliers) / sigma
    grad = np.zeros(3)
    grad[:1] = 2.0 / sigma * (non_outliers @ -x[~outliers_mask, :])
    signed_outliers = np.where(linear_loss[outliers_mask] < 0, -1.0, 1.0)
    grad[:1] -= 2.0 * epsilon * (signed_outliers @ x[outliers_mask, :])
    grad[2] = n_samples - n_outliers * epsilon**2 - squared_loss / sigma
    grad[1] = -2.0 * np.sum(non_outliers) / sigma - 2.0 * epsilon * np.sum(signed_outliers)
    loss = n_samples * sigma + squared_loss + outlier_loss
    return loss, grad
