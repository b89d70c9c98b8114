"""L-BFGS with one curvature history for the whole run (nst_tf/loop/lbfgs.py)."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import NSTError, StyleCost, StyleTransfer, StyleTransferConfig
from nst_tf.loop.lbfgs import LBFGS


def test_lbfgs_solves_a_quadratic(rng):
    n = 12
    q = rng.normal(size=(n, n))
    A = q @ q.T + n * np.eye(n)
    b = rng.normal(size=n)
    x = tf.Variable(np.zeros(n, np.float32))
    optimizer = LBFGS(history_size=5)
    optimizer.build([x])
    A_t, b_t = tf.constant(A, tf.float32), tf.constant(b, tf.float32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            f = 0.5 * tf.tensordot(x, tf.linalg.matvec(A_t, x), 1) - tf.tensordot(b_t, x, 1)
        optimizer.apply_gradients([(tape.gradient(f, x), x)])

    for _ in range(40):
        step()
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), rtol=1e-3, atol=1e-4)
    assert int(optimizer.count) == 5 and int(optimizer.iterations) == 40


def test_lbfgs_keeps_one_history_across_reports(model, images):
    def run(print_every):
        config = StyleTransferConfig(epochs=12, print_every=print_every, seed=0, optimizer="lbfgs", lbfgs_history=8)
        transfer = StyleTransfer(StyleCost(model, *images, config))
        reports = list(transfer.run())
        return transfer, reports

    every_step, reports_1 = run(1)
    once, reports_12 = run(12)
    assert len(reports_1) == 12 and len(reports_12) == 2
    np.testing.assert_allclose(every_step.current_image(), once.current_image(), rtol=1e-5, atol=1e-3)
    assert int(every_step.optimizer.count) == 8  # 11 curvature pairs seen, the last 8 kept
    assert reports_1[-1].total_cost < 0.5 * reports_1[0].total_cost


def test_lbfgs_rejects_a_bad_history_size():
    with pytest.raises(NSTError, match="lbfgs_history must be a positive whole number; got 0"):
        StyleTransferConfig(optimizer="lbfgs", lbfgs_history=0)
    with pytest.raises(NSTError, match="optimizer must be one of adam, lbfgs; got 'sgd'"):
        StyleTransferConfig(optimizer="sgd")
