"""The optimization loop: ``StyleTransfer`` (Adam or L-BFGS over a ``tf.Variable`` image) and what it yields."""
