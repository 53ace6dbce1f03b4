"""Moving MNIST: local generation, download of the real file, splitting and batching."""
