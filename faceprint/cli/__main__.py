"""``python -m faceprint.cli``: the same as the ``faceprint`` command."""

import sys

from . import main

sys.exit(main())
