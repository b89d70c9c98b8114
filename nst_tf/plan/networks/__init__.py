"""Network descriptions (vocabulary and geometry, free of TensorFlow) and their registry, ``registry.NETWORKS``."""
