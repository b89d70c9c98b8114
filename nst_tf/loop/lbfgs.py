"""L-BFGS for the image, in TensorFlow, with one curvature history for the whole run.

Like Justin Johnson's neural-style (torch's optim.lbfgs) and ``torch.optim.LBFGS``, it keeps the last
``history_size`` pairs (s, y) = (change of image, change of gradient) for the whole run, in variables, so reports
do not reset it (as SciPy's L-BFGS called per report would). One cost-and-gradient evaluation an iteration: no
line search; the step is the two-loop direction times ``learning_rate``, the first scaled by ``min(1, 1 / sum|g|)``.
"""

from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError

#: Smallest s.y that counts as positive curvature; smaller pairs are not stored.
CURVATURE_EPSILON = 1e-10


class LBFGS(tf.Module):
    """Limited-memory BFGS with the ``build`` / ``apply_gradients`` subset of a Keras optimizer.

    Args:
        learning_rate: multiplier of the quasi-Newton step (1.0 by default).
        history_size: number of (s, y) pairs kept, for the whole run.

    Raises:
        NSTError: ``history_size`` is not a positive ``int``.
    """

    def __init__(self, learning_rate=1.0, history_size=100, name="lbfgs"):
        super().__init__(name=name)
        if not isinstance(history_size, int) or history_size < 1:
            raise NSTError(f"history_size must be a positive whole number; got {history_size!r}")
        self.learning_rate = float(learning_rate)
        self.history_size = history_size

    def build(self, var_list):
        """Creates the history for the single variable in ``var_list``; ``NSTError`` for another count."""
        if len(var_list) != 1:
            raise NSTError("LBFGS optimizes exactly one variable (the image)")
        (variable,) = var_list
        n, m = int(variable.shape.num_elements()), self.history_size
        with self.name_scope:
            self.s = tf.Variable(tf.zeros([m, n]), trainable=False, name="s")
            self.y = tf.Variable(tf.zeros([m, n]), trainable=False, name="y")
            self.rho = tf.Variable(tf.zeros([m]), trainable=False, name="rho")
            self.count = tf.Variable(0, trainable=False, name="count")  # pairs stored
            self.head = tf.Variable(0, trainable=False, name="head")  # next slot to write
            self.previous_x = tf.Variable(tf.zeros([n]), trainable=False, name="previous_x")
            self.previous_g = tf.Variable(tf.zeros([n]), trainable=False, name="previous_g")
            self.iterations = tf.Variable(0, trainable=False, name="iterations")

    def _remember(self, x, g):
        s = x - self.previous_x
        y = g - self.previous_g
        ys = tf.tensordot(y, s, 1)
        if ys > CURVATURE_EPSILON:
            slot = self.head.value()
            # Row assignments update the history in place; a dense read of the (history_size, n) variables
            # anywhere in the step would make TensorFlow copy them whole on the next write.
            self.s[slot].assign(s)
            self.y[slot].assign(y)
            self.rho[slot].assign(1.0 / ys)
            self.head.assign((slot + 1) % self.history_size)
            self.count.assign(tf.minimum(self.count + 1, self.history_size))

    def _direction(self, g):
        """The two-loop recursion: -H g with the stored pairs."""
        m = self.history_size
        count = self.count.value()
        q = g
        alphas = tf.TensorArray(tf.float32, size=count)
        head = self.head.value()
        for j in tf.range(count):  # newest to oldest
            i = (head - 1 - j) % m
            alpha = self.rho.sparse_read(i) * tf.tensordot(self.s.sparse_read(i), q, 1)
            alphas = alphas.write(j, alpha)
            q -= alpha * self.y.sparse_read(i)
        newest = (head - 1) % m
        s_newest, y_newest = self.s.sparse_read(newest), self.y.sparse_read(newest)
        gamma = tf.where(
            count > 0,
            tf.tensordot(s_newest, y_newest, 1) / tf.maximum(tf.tensordot(y_newest, y_newest, 1), 1e-30),
            1.0,
        )
        r = gamma * q
        for k in tf.range(count):  # oldest to newest
            j = count - 1 - k
            i = (head - 1 - j) % m
            beta = self.rho.sparse_read(i) * tf.tensordot(self.y.sparse_read(i), r, 1)
            r += self.s.sparse_read(i) * (alphas.read(j) - beta)
        return -r

    def apply_gradients(self, grads_and_vars):
        """One L-BFGS iteration for the (gradient, variable) pair given (after ``build``)."""
        ((gradient, variable),) = grads_and_vars
        x = tf.reshape(tf.cast(variable, tf.float32), [-1])
        g = tf.reshape(tf.cast(gradient, tf.float32), [-1])
        if self.iterations > 0:
            self._remember(x, g)
        direction = self._direction(g)
        # Not a descent direction (can follow a bad curvature pair): fall back to -g.
        if tf.tensordot(g, direction, 1) >= 0.0:
            direction = -g
        first = tf.minimum(1.0, 1.0 / tf.maximum(tf.reduce_sum(tf.abs(g)), 1e-30))
        step = self.learning_rate * tf.where(self.iterations == 0, first, 1.0)
        self.previous_x.assign(x)
        self.previous_g.assign(g)
        self.iterations.assign_add(1)
        variable.assign(tf.reshape(x + step * direction, variable.shape))
