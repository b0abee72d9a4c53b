"""Speed and memory benchmarks of FiD and FiDO (see `__main__`)."""
