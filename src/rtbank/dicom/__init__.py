"""Django-free DICOM-RT core: pure functions on pydicom datasets and numpy arrays.

Nothing in this package imports Django, so the same code serves the worker, the command line
(`rtbank dvh`, `rtbank anonymize`, `rtbank synth`) and scripts.
"""

import pydicom.config as _pydicom_config

# Real archives carry values that break VR rules harmlessly (UIDs with leading zeros, odd lengths);
# rtbank stores what clinics send and checks what matters itself (rtbank.dicom.uids, .validate).
_pydicom_config.settings.reading_validation_mode = _pydicom_config.IGNORE
