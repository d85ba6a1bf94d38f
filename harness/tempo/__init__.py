"""Tempo's HTTP API from the client side: ``TempoClient`` and the decoding of Tempo's trace JSON.

The public names are re-exported by ``hoptrace.harness``; the modules here are its implementation.
"""
