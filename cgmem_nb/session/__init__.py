"""Sessions: the profiler, its private recordings and the finished results."""
