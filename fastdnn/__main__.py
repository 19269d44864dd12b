"""``python -m fastdnn`` is the ``fastdnn`` command."""

import sys

from fastdnn.cli import main

sys.exit(main())
