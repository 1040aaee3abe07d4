"""``python -m fleetpulse.cli ARGS``: the ``fleetpulse`` command (tests, benchmarks and the demo start it so)."""

import sys

from fleetpulse.cli import main

sys.exit(main())
