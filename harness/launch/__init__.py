"""Launching what a trace test needs: backends, RabbitMQ, services under the bootstrap, child processes.

The public names are re-exported by ``hoptrace.harness``; the modules here are its implementation.
"""
