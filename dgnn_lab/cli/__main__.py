"""``python -m dgnn_lab.cli``: the same as the ``dgnn-lab`` console script."""

import sys

from dgnn_lab.cli import main

sys.exit(main())
