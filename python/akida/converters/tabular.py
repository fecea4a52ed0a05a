"""Tabular data: the quantile one-hot encoder."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple

import numpy as np

from ..errors import InputError, ParameterError, NotFittedError
from ._checks import _int_param


def _is_nan(value: Any) -> bool:
    try:
        return bool(value != value)
    except Exception:  # noqa: BLE001 - objects with exotic comparisons are not NaN
        return False


class QuantileOneHotEncoder:
    """One spike per column for tabular data: quantile bins and categories, one-hot.

    - Numeric column: ``fit`` computes the edges ``np.quantile(column, linspace(0, 1, n_bins + 1))``
      (numpy's default linear method) and keeps the unique ones, ``e_0 < ... < e_B``, giving
      ``B`` bins (at least 1); a value ``v`` activates bin ``searchsorted(e_1..e_{B-1}, v,
      side="right")``: bins are ``[e_i, e_{i+1})``, values below the training range go to the
      first bin, values at or above the last edge to the last bin. NaN raises InputError.
    - Categorical column: one input per category seen by ``fit`` (sorted when the values are
      orderable, else in order of first appearance); an unseen category raises InputError
      naming the column and the value. Float NaN is not accepted as a category; ``None`` is.

    The inputs of the columns are laid out one after the other in column order
    (:attr:`column_slices`); every row gives exactly one spike per column.

    Parameters
    ----------
    n_bins : int
        Quantile bins per numeric column (>= 1; fewer when edges coincide).
    categorical_columns : iterable of int
        Indices of the categorical columns (negative indices count from the end).

    Examples
    --------
    >>> enc = QuantileOneHotEncoder(n_bins=2, categorical_columns=[1])
    >>> X = np.array([[1.0, "a"], [2.0, "b"], [3.0, "a"]], dtype=object)
    >>> enc.fit_transform(X)[:, 0, 0]
    array([[1, 0, 1, 0],
           [0, 1, 0, 1],
           [0, 1, 1, 0]], dtype=uint8)
    >>> enc.input_shape
    (1, 1, 4)
    """

    def __init__(self, n_bins: int = 10, categorical_columns: Iterable[int] = ()):
        self.n_bins = _int_param(n_bins, "n_bins", 1, 255, owner="QuantileOneHotEncoder")
        try:
            cats = list(categorical_columns)
        except TypeError:
            raise ParameterError(
                f"QuantileOneHotEncoder: categorical_columns must be a sequence of column indices, "
                f"got {categorical_columns!r}"
            ) from None
        self.categorical_columns = tuple(
            _int_param(c, "categorical column", -(2**31), owner="QuantileOneHotEncoder") for c in cats
        )
        self._fitted = False

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _as_2d(X: Any) -> np.ndarray:
        if isinstance(X, np.ndarray):
            array = X
        else:
            try:
                array = np.asarray(X)
            except Exception:  # noqa: BLE001 - ragged input
                array = np.asarray(X, dtype=object)
        if array.ndim != 2:
            raise InputError(f"X must be 2-D (rows, columns), got shape {array.shape}")
        return array

    def _numeric(self, column: np.ndarray, j: int) -> np.ndarray:
        try:
            values = column.astype(np.float64)
        except (TypeError, ValueError):
            bad = next(v for v in column if not _castable_float(v))
            raise InputError(f"column {j} is numeric but holds the non-numeric value {bad!r}") from None
        nan = np.isnan(values)
        if nan.any():
            raise InputError(f"column {j} (numeric) has NaN at row {int(np.flatnonzero(nan)[0])}")
        return values

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError("this QuantileOneHotEncoder is not fitted yet: call fit(X) first")

    # -- API ----------------------------------------------------------------------------------

    def fit(self, X: Any) -> "QuantileOneHotEncoder":
        """Learn the bin edges and the categories from training rows ``X`` (2-D). Returns self."""
        X = self._as_2d(X)
        n_rows, n_cols = X.shape
        if n_rows == 0 or n_cols == 0:
            raise InputError(f"fit needs at least one row and one column, got shape {X.shape}")
        categorical = set()
        for c in self.categorical_columns:
            if not -n_cols <= c < n_cols:
                raise ParameterError(
                    f"QuantileOneHotEncoder: categorical column {c} does not exist (X has {n_cols} columns)"
                )
            if c % n_cols in categorical:
                raise ParameterError(f"QuantileOneHotEncoder: categorical column {c} is given twice")
            categorical.add(c % n_cols)
        bin_edges: list[Optional[np.ndarray]] = []
        categories: list[Optional[list[Any]]] = []
        slices: list[slice] = []
        start = 0
        for j in range(n_cols):
            column = X[:, j]
            if j in categorical:
                for i, v in enumerate(column):
                    if _is_nan(v):
                        raise InputError(f"column {j} (categorical) has NaN at row {i}")
                seen = list(dict.fromkeys(column.tolist()))
                try:
                    seen = sorted(seen)
                except TypeError:
                    pass
                categories.append(seen)
                bin_edges.append(None)
                width = len(seen)
            else:
                values = self._numeric(column, j)
                if not np.isfinite(values).all():
                    i = int(np.flatnonzero(~np.isfinite(values))[0])
                    raise InputError(f"column {j} (numeric) has the infinite value {values[i]} at row {i}")
                edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, self.n_bins + 1)))
                bin_edges.append(edges)
                categories.append(None)
                width = max(len(edges) - 1, 1)
            slices.append(slice(start, start + width))
            start += width
        self.bin_edges_ = bin_edges
        self.categories_ = categories
        self._category_index = [None if c is None else {v: k for k, v in enumerate(c)} for c in categories]
        self.column_slices = slices
        self.n_columns_ = n_cols
        self._num_inputs = start
        self._fitted = True
        return self

    def transform(self, X: Any) -> np.ndarray:
        """One-hot spikes ``uint8 (N, 1, 1, num_inputs)`` for rows ``X`` (same columns as at fit)."""
        self._check_fitted()
        X = self._as_2d(X)
        if X.shape[1] != self.n_columns_:
            raise InputError(f"X has {X.shape[1]} columns, the encoder was fitted on {self.n_columns_}")
        n = X.shape[0]
        out = np.zeros((n, self._num_inputs), dtype=np.uint8)
        rows = np.arange(n)
        for j in range(self.n_columns_):
            column = X[:, j]
            start = self.column_slices[j].start
            edges = self.bin_edges_[j]
            index = self._category_index[j]
            if edges is None:
                assert index is not None
                active = np.empty(n, dtype=np.int64)
                for i, v in enumerate(column.tolist()):
                    try:
                        active[i] = index[v]
                    except (KeyError, TypeError):
                        raise InputError(
                            f"column {j} (categorical): value {v!r} at row {i} was not seen by fit "
                            f"(known: {self.categories_[j]})"
                        ) from None
            else:
                values = self._numeric(column, j)
                active = np.searchsorted(edges[1:-1], values, side="right")
            out[rows, start + active] = 1
        return out.reshape(n, 1, 1, self._num_inputs)

    def fit_transform(self, X: Any) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    @property
    def num_inputs(self) -> int:
        """Total number of inputs (spike channels) over all columns."""
        self._check_fitted()
        return self._num_inputs

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """``(1, 1, num_inputs)``: use ``akida.InputData(1, 1, num_inputs, input_bits=1)``."""
        return (1, 1, self.num_inputs)

    def __repr__(self) -> str:
        return f"QuantileOneHotEncoder(n_bins={self.n_bins}, categorical_columns={self.categorical_columns})"


def _castable_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
