"""Faust workers that feed events through the policies and emit alerts."""
