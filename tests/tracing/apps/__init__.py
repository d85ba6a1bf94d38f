"""Plain services for the multi-process propagation tests. They contain no tracing code: they are traced
only because they run under ``hoptrace run``."""
