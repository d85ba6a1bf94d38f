"""The directory put first on ``PYTHONPATH`` by ``hoptrace run``; it holds only ``sitecustomize``."""
