"""The ``hoptrace`` command line: the entry point, and ``hoptrace check`` / ``hoptrace trace``.

Each subcommand registers itself from the package that owns it; only argparse is imported until one runs.
"""
