"""dbt's `modules` (the Python modules a macro may use), for the lint templater."""

import datetime  # noqa: F401
import re  # noqa: F401

import pytz  # noqa: F401
