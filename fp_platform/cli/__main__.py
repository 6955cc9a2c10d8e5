"""`python -m fp_platform.cli` is `fp-platform`."""

import sys

from fp_platform.cli import main

sys.exit(main())
