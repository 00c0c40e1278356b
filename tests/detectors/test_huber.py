"""The Huber line (``detectors/huber.py``) against scikit-learn's ``HuberRegressor``, which
it replaces in the product: the same fit, bit for bit, on hours of senders."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor

from silkwatch.detectors.huber import huber_line
from silkwatch.detectors.synthetic import synthetic_day


def reference(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = HuberRegressor(epsilon=1.35, alpha=0.0, max_iter=500).fit(x[:, None], y)
    return float(model.coef_[0]), float(model.intercept_), float(model.scale_)


def log_senders(octets: np.ndarray, packets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fit_bubble``'s axes: log10 packets and log10 bytes, zeros as 1."""
    return np.log10(np.maximum(packets, 1.0)), np.log10(np.maximum(octets, 1.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), st.integers(0, 10**6)), min_size=3, max_size=300
    ).filter(lambda rows: len({p for _, p in rows}) > 1)
)
def test_random_senders_fit_as_scikit_learn(rows: list[tuple[int, int]]) -> None:
    octets, packets = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    x, y = log_senders(octets, packets)
    if np.ptp(x) == 0.0:
        return
    assert tuple(huber_line(x, y)) == reference(x, y)


@pytest.mark.parametrize("seed", [7, 13])
def test_every_hour_of_a_day_fits_as_scikit_learn(seed: int) -> None:
    """Each hour's senders of a synthetic day (client bytes and packets per source)."""
    flows = np.concatenate(synthetic_day(seed, hosts=300).batches)
    hours = flows["stime_ms"] // 3_600_000
    fitted = 0
    for hour in np.unique(hours):
        batch = flows[hours == hour]
        _, host = np.unique(batch["sip"], axis=0, return_inverse=True)
        x, y = log_senders(
            np.bincount(host, weights=batch["bytes"]), np.bincount(host, weights=batch["packets"])
        )
        if len(x) >= 3 and np.ptp(x) > 0.0:
            assert tuple(huber_line(x, y)) == reference(x, y), hour
            fitted += 1
    assert fitted == 24
