"""Trace assertions: the ``Trace`` tree, selectors and chains, the failure picture, and waiting for a trace.

The public names are re-exported by ``hoptrace.harness``; the modules here are its implementation.
"""
