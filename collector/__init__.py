"""The FleetPulse agent: host sampling, heartbeats and the wire contract."""

__version__ = "0.1.0"
