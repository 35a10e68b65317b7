"""``python -m bot`` is ``kiss-coach``."""

import sys

from bot.cli import main

sys.exit(main())
