"""Pure rules: billing states, dunning policies and decisions, decline classes.

Nothing in this package performs I/O, reads a clock or touches the ORM; the
current time always arrives as an argument called ``now``.
"""
