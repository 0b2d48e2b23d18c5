"""De-identification of RT datasets into any number of individually anonymised copies (no Django).

PS3.15 Annex E Basic Application Level Confidentiality Profile with options, a retain list per supported
SOP class, keyed UID/patient maps so references resolve within a copy and nowhere else. See
``docs/anonymisation.md``.

Typical use::

    profile = Profile({Option.RETAIN_LONGITUDINAL_MODIFIED_DATES, Option.CLEAN_DESCRIPTORS})
    anonymizer = Anonymizer(profile, key, copy_id="1")
    out = anonymizer.anonymize(ds)          # ds is not changed
    anonymizer.uid_map                      # original UID -> new UID, to store with the audit
"""

from rtbank.dicom.anonymize.engine import Anonymizer
from rtbank.dicom.anonymize.errors import AnonymizationRefused
from rtbank.dicom.anonymize.files import CopyResult, FileResult, Report, Status, anonymize_files, read_dicom
from rtbank.dicom.anonymize.keyed import KeyedPseudonyms, UidMap, is_well_known_uid, new_key
from rtbank.dicom.anonymize.profile import Option, Profile, SafePrivateTag
from rtbank.dicom.anonymize.tables import action_table, retain_list, supported_sop_classes

__all__ = [
    "AnonymizationRefused",
    "Anonymizer",
    "CopyResult",
    "FileResult",
    "KeyedPseudonyms",
    "Option",
    "Profile",
    "Report",
    "SafePrivateTag",
    "Status",
    "UidMap",
    "action_table",
    "anonymize_files",
    "is_well_known_uid",
    "new_key",
    "read_dicom",
    "retain_list",
    "supported_sop_classes",
]
