"""``python -m engine.cli`` (and ``torchrun -m engine.cli``) runs the ``losslab`` command."""

import sys

from engine.cli import main

sys.exit(main())
