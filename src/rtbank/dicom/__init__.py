"""Django-free DICOM-RT core: pure functions on pydicom datasets and numpy arrays.

Nothing in this package imports Django, so the same code serves the worker, the command line
(`rtbank dvh`, `rtbank anonymize`, `rtbank synth`) and scripts.
"""
