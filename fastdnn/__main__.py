"""``python -m fastdnn`` is the ``fastdnn`` command."""

import sys

from fastdnn.command import main

if __name__ == "__main__":
    sys.exit(main())
