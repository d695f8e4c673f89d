"""The realistic demo data generator: `generate_demo(out, scale, seed, ...)` writes an inbox.

See `generator` for what the data looks like, the files it writes and the deliberate defects.
"""

from .generator import DEFAULT_END, DEFECT_RATES, SCALES, generate_demo
from .world import Scale

__all__ = ["DEFAULT_END", "DEFECT_RATES", "SCALES", "Scale", "generate_demo"]
