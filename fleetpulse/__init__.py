"""The `fleetpulse` command line and the local-infrastructure helpers behind it."""
