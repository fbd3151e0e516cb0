"""scikit-learn's digits: 1,797 8×8 grey-level images of handwritten digits, 10 classes.

The data set ships inside scikit-learn (`sklearn.datasets.load_digits` reads a file from the
package), so nothing is downloaded at run time. Pixels are integers 0..16; they are scaled to
[0, 1], so zero pixels stay exactly zero (the first layer's input sparsity is real).
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
    x: np.ndarray   # [N, 8, 8, 1] float32, NHWC
    y: np.ndarray   # [N] int32

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, n: int) -> "Split":
        return Split(self.x[:n], self.y[:n])


@dataclasses.dataclass(frozen=True)
class Digits:
    train: Split
    val: Split
    test: Split


def load_digits(seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Digits:
    """Deterministic shuffled train/val/test split (val and test are the given fractions)."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    y = d.target.astype(np.int32)
    perm = np.random.default_rng(seed).permutation(len(y))
    x, y = x[perm], y[perm]
    n = len(y)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    test = Split(x[:n_test], y[:n_test])
    val = Split(x[n_test:n_test + n_val], y[n_test:n_test + n_val])
    train = Split(x[n_test + n_val:], y[n_test + n_val:])
    return Digits(train=train, val=val, test=test)
