"""Every write, state change and enqueue of the labeling domain, one module per topic."""
