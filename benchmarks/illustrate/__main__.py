"""`python -m benchmarks.illustrate ...`: the illustration benchmark (benchmarks/illustrate/cli.py)."""

import sys

from benchmarks.illustrate.cli import main

sys.exit(main())
