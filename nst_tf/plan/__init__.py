"""Descriptions and planning, without TensorFlow: the course's configuration, network descriptions, weight
readers, tile and memory planning, and the large-image and video options.

The command checks its input with these before the seconds TensorFlow takes to import.
"""
