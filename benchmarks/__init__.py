"""On-demand benchmarks (run as scripts: `python benchmarks/NAME.py`)."""
