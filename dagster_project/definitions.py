"""The Dagster definitions of Voronka: extract, validate, transform, schedule.

Loaded lazily (``@dg.definitions``): importing this module builds nothing and starts no dbt;
Dagster calls ``defs`` when it loads the code location (D122). The builder is
``defs/build.py``, which ``voronka run`` uses too (D121).
"""

import dagster as dg

from dagster_project.defs.build import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
