"""The shared search choice (eyejax.dataflow.search.best_candidate): the lowest feasible score, the
first of equals, for the float32 (top_k) and float64 (argmin) paths alike."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eyejax.dataflow.search import best_candidate

SHAPE = (4, 6, 3, 2, 3)     # the v1 fast grid's axes


def reference(score, ok):
    """First index of the lowest score among feasible candidates (numpy, row-major order)."""
    s = np.where(ok, score, np.inf).reshape(-1)
    if not ok.any():
        return None
    return np.unravel_index(int(np.flatnonzero(s == s.min())[0]), ok.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_best_candidate_matches_the_first_lowest_feasible(dtype):
    rng = np.random.default_rng(0)
    fn = jax.jit(jax.vmap(best_candidate))
    # few distinct values, so ties are common; some rows with nothing feasible
    score = rng.integers(0, 5, size=(200,) + SHAPE).astype(dtype)
    ok = rng.random((200,) + SHAPE) < rng.choice([0.0, 0.02, 0.5, 1.0], size=200)[:, None, None, None, None, None]
    best, any_ok = fn(jnp.asarray(score), jnp.asarray(ok))
    best = np.stack([np.asarray(b) for b in best], axis=1)
    for i in range(200):
        ref = reference(score[i], ok[i])
        assert bool(any_ok[i]) == (ref is not None)
        if ref is not None:
            assert tuple(best[i]) == tuple(int(x) for x in ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factorized_scores_broadcast(dtype):
    """Scores and masks with size-1 axes (the factorized grid) broadcast to the full grid."""
    score = jnp.asarray(np.arange(4, dtype=dtype)[::-1].reshape(4, 1))
    ok = jnp.asarray(np.array([[True, False, True]] * 4))
    best, any_ok = best_candidate(score, ok)
    assert bool(any_ok) and tuple(int(b) for b in best) == (3, 0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_overflow_still_feasible(dtype):
    """A feasible candidate whose score overflowed to inf still counts as feasible and
    beats every infeasible one."""
    score = jnp.asarray([1.0, np.inf, np.inf], dtype)
    ok = jnp.asarray([False, True, True])
    best, any_ok = best_candidate(score, ok)
    assert bool(any_ok) and int(best[0]) == 1
