"""Version of the DVH engine's numbers.

Stored curves and metrics carry it; the worker recomputes them when it changes. Change it whenever a
change to contours, dose grids, sampling or metric definitions can change a result.
"""

ENGINE_VERSION = "rtbank-dvh 1.0"
