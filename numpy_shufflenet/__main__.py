"""``python -m numpy_shufflenet``: the command line of :mod:`numpy_shufflenet.cli`."""

import sys

from .cli import main

sys.exit(main())
