"""Weight file readers, free of TensorFlow: MatConvNet's .mat, Keras' .h5, torch's .pth and .safetensors."""
