"""Entry point of the PyInstaller bundle: the ``losslab`` command (plain ``losslab`` opens the app)."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # surface worker processes re-enter this executable
    sys.exit(main())
