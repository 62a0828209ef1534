"""Payment gateways behind one small interface (see :mod:`dunwell.gateways.base`)."""
