"""Simulators. ``ngspice.py`` is the only module that touches PySpice."""
