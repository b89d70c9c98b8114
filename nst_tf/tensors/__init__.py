"""TensorFlow parts: the network modules, images, precision, colours, the cost functions, flow and warping."""
