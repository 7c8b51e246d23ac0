"""``python -m faceprint``: the same as the ``faceprint`` command."""

import sys

from .cli import main

sys.exit(main())
