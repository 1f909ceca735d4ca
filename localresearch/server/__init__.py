"""The HTTP side: routes translate between HTTP and the core, nothing else."""
