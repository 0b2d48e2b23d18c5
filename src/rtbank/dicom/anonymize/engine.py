"""The de-identification engine: one :class:`Anonymizer` per anonymised copy.

For every data element, at any depth:

1. a private element is removed unless the profile retains safe private attributes and the whitelist
   names it (its private creator is kept with it);
2. an element listed in PS3.15 Table E.1-1 gets the table's action under the chosen options; a compound
   action (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``) becomes ``Z`` or ``D`` only where PS3.3 requires the
   attribute at that path, and ``X/Z/U*`` keeps the reference sequence with its UIDs replaced;
3. otherwise the element is kept only if the SOP class's retain list has its path; everything else is
   removed, so an attribute in neither list never survives silently.

Kept values are then made safe: every UI value that is not a well-known standard UID is replaced through
the copy's keyed :class:`~rtbank.dicom.anonymize.keyed.UidMap`; dates and times follow the temporal option;
free text loses the identity values the object carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from rtbank.dicom.anonymize.errors import AnonymizationRefused
from rtbank.dicom.anonymize.keyed import (
    KeyedPseudonyms,
    PseudonymSource,
    UidMap,
    check_key,
    check_pseudonym,
    date_shift_days,
    keyed_token,
)
from rtbank.dicom.anonymize.profile import Option, Profile
from rtbank.dicom.anonymize.tables import (
    TYPE_1,
    TYPE_2,
    Path_,
    ResolvedActions,
    RetainList,
    action_table,
    retain_list,
    supported_sop_classes,
)
from rtbank.dicom.anonymize.values import (
    TEMPORAL_VRS,
    TEXT_VRS,
    TextCleaner,
    dummy_value,
    identity_tokens,
    map_values,
    shift_date,
    shift_datetime,
    vr_of,
)
from rtbank.dicom.uids import uid_from

IMPLEMENTATION_CLASS_UID = UID(uid_from("rtbank", "anonymize", "implementation class"))
IMPLEMENTATION_VERSION_NAME = "RTBANK_ANON_1"
_PATIENT_ID = 0x00100020
_PATIENT_NAME = 0x00100010
# VRs whose values the engine must see (map, shift, clean, recurse); the rest passes through as encoded.
_VALUE_VRS = frozenset({"SQ", "UI", "AE", "UN", "DA", "DT", "TM", "LO", "SH", "ST", "LT", "UT", "UC", "PN"})
_Element = DataElement | RawDataElement
_DEID_TAGS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})  # set by the engine itself


@dataclass
class _Job:
    """State of one object being anonymised."""

    retain: RetainList
    clean_text: TextCleaner
    pseudonym: str
    encoding: tuple[bool | None, bool | None]
    removed: list[str] = field(default_factory=list)


class Anonymizer:
    """De-identifies datasets into one copy of an audit.

    Parameters
    ----------
    profile
        The PS3.15 profile and options.
    key
        The audit's secret key (at least 16 random bytes); with ``copy_id`` it fixes every UID, pseudonym
        and date shift of the copy.
    copy_id
        Identifies the copy within the audit (e.g. ``"1"``); used in generated pseudonyms.
    patient_pseudonym
        Original Patient ID -> pseudonym, as a mapping or a callable. Default: :class:`KeyedPseudonyms`
        giving ``<prefix>-<copy_id>-<n>``.
    prefix
        Prefix of generated pseudonyms.
    """

    def __init__(
        self,
        profile: Profile,
        key: bytes,
        copy_id: str,
        patient_pseudonym: PseudonymSource | None = None,
        *,
        prefix: str = "ANON",
    ) -> None:
        self.profile = profile
        self.copy_id = str(copy_id)
        self._key = check_key(key)
        self._uids = UidMap(key, self.copy_id)
        self._pseudonyms = (
            patient_pseudonym if patient_pseudonym is not None else KeyedPseudonyms(key, self.copy_id, prefix)
        )
        self._patients: dict[str, str] = {}
        self._actions: ResolvedActions = action_table().actions_for(profile.options)
        self._safe_private = {(t.creator.strip(), t.group, t.offset) for t in profile.safe_private}
        self.date_shift_days = date_shift_days(key, self.copy_id)
        # Paths of the attributes the last call removed because neither list names them (for reports).
        self.last_removed: tuple[str, ...] = ()

    @property
    def uid_map(self) -> dict[str, str]:
        """Every original UID -> new UID this anonymiser has applied (for the audit to store)."""
        return dict(self._uids.applied)

    @property
    def patient_map(self) -> dict[str, str]:
        """Original Patient ID -> pseudonym, for the patients seen so far."""
        return dict(self._patients)

    def map_uid(self, uid: str) -> str:
        """The copy's UID for ``uid`` (well-known standard UIDs are returned unchanged)."""
        return self._uids(uid)

    def anonymize(self, ds: Dataset) -> Dataset:
        """A de-identified copy of ``ds`` with new file meta; ``ds`` itself is not changed.

        Raises
        ------
        AnonymizationRefused
            Burned-in annotation, an unsupported SOP class, no SOP Instance UID, or big-endian encoding.
        """
        retain = _check_acceptable(ds)
        original_id = str(ds.get("PatientID", "") or "").strip()
        job = _Job(
            retain=retain,
            clean_text=TextCleaner(identity_tokens(ds), self._uids),
            pseudonym=self._pseudonym_for(original_id),
            encoding=ds.original_encoding,
        )
        out = self._clean(ds, (), job)
        self._add_deidentification(out, job)
        out.file_meta = self._file_meta(ds, out)
        self.last_removed = tuple(job.removed)
        return out

    def _pseudonym_for(self, patient_id: str) -> str:
        known = self._patients.get(patient_id)
        if known is not None:
            return known
        if isinstance(self._pseudonyms, Mapping):
            if patient_id not in self._pseudonyms:
                raise AnonymizationRefused(
                    "the pseudonym list has no entry for this object's Patient ID: add the patient to it"
                )
            pseudonym = self._pseudonyms[patient_id]
        else:
            pseudonym = self._pseudonyms(patient_id)
        check_pseudonym(pseudonym)
        if pseudonym == patient_id:
            raise ValueError("a pseudonym equals the original Patient ID it stands for")
        if pseudonym in self._patients.values():
            raise ValueError(f"two patients of copy {self.copy_id} got the same pseudonym {pseudonym}")
        self._patients[patient_id] = pseudonym
        return pseudonym

    # -- the walk ---------------------------------------------------------------------------------

    def _clean(self, ds: Dataset, parents: Path_, job: _Job) -> Dataset:
        out = Dataset()
        kept_private_blocks: set[tuple[int, int]] = set()
        for tag in sorted(ds.keys()):
            if tag.element == 0:
                continue  # group lengths are recomputed by the writer, or absent
            raw = ds.get_item(tag)
            if tag.is_private:
                if not tag.is_private_creator and self._is_safe_private(ds, tag):
                    out[tag] = raw
                    kept_private_blocks.add((tag.group, tag.element >> 8))
                continue
            if int(tag) in (_PATIENT_ID, _PATIENT_NAME):
                out.add(DataElement(tag, "LO" if int(tag) == _PATIENT_ID else "PN", job.pseudonym))
                continue
            if not parents and int(tag) in _DEID_TAGS:
                continue
            new = self._apply(ds, tag, parents, job)
            if new is not None:
                out[tag] = new
        for group, block in kept_private_blocks:
            creator = ds[BaseTag((group << 16) | block)]
            out.add(DataElement(creator.tag, "LO", creator.value))
        # Same encoding as the input, so the writer copies passed-through elements without decoding them.
        out.set_original_encoding(*job.encoding, out._character_set)
        return out

    def _apply(self, ds: Dataset, tag: BaseTag, parents: Path_, job: _Job) -> _Element | None:
        keyword = keyword_for_tag(tag)
        path = (*parents, keyword or f"{int(tag):08X}")
        vr = vr_of(ds.get_item(tag))
        action = self._actions.get(int(tag))
        if action is None:
            if not keyword or not job.retain.keeps(path):
                job.removed.append(">".join(path))
                return None
            return self._keep(ds, tag, vr, path, job, from_table=False)
        action = _resolve_compound(action, job.retain.type_of(path))
        if action == "X":
            return None
        if action == "Z":
            return DataElement(tag, vr, Sequence() if vr == "SQ" else empty_value_for_VR(vr))
        if action == "C":
            return self._clean_value(ds, tag, vr, path, job)
        if action == "D" and vr not in ("SQ", "UI"):
            return DataElement(tag, vr, dummy_value(vr))
        return self._keep(ds, tag, vr, path, job, from_table=True)  # K, U, and D on sequences/UIDs

    def _keep(
        self, ds: Dataset, tag: BaseTag, vr: str, path: Path_, job: _Job, *, from_table: bool
    ) -> _Element | None:
        if vr not in _VALUE_VRS:
            # Numbers, codes and bulk data (pixels, contours, control points): passed through as encoded,
            # which keeps them byte for byte and spares decoding a million contour points.
            raw = ds.get_item(tag)
            if isinstance(raw, RawDataElement) and raw.VR in (None, vr):
                return raw
            return DataElement(tag, vr, _copy_value(ds[tag].value))
        value = ds[tag].value
        if vr == "SQ":
            return DataElement(tag, vr, Sequence([self._clean(item, path, job) for item in value or ()]))
        if vr == "UI":
            return DataElement(tag, vr, map_values(value, self._uids))
        if vr in TEMPORAL_VRS and not from_table:
            return self._temporal(tag, vr, value, path, job)
        if vr in TEXT_VRS:
            return DataElement(tag, vr, map_values(value, job.clean_text))
        return DataElement(tag, vr, _copy_value(value))

    def _clean_value(self, ds: Dataset, tag: BaseTag, vr: str, path: Path_, job: _Job) -> _Element | None:
        """Table action ``C`` under the chosen option: shift dates, pseudonymise AE titles, clean text."""
        if vr in ("DA", "DT") and Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in self.profile:
            return self._temporal(tag, vr, ds[tag].value, path, job)
        if vr == "AE":
            return DataElement(tag, vr, map_values(ds[tag].value, self._ae_title))
        return self._keep(ds, tag, vr, path, job, from_table=True)

    def _temporal(self, tag: BaseTag, vr: str, value: object, path: Path_, job: _Job) -> DataElement | None:
        """A date, date-time or time kept by the retain list or cleaned under Modified Dates."""
        if Option.RETAIN_LONGITUDINAL_FULL_DATES in self.profile:
            return DataElement(tag, vr, _copy_value(value))
        if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in self.profile:
            if vr == "TM":
                return DataElement(tag, vr, _copy_value(value))
            shift = shift_date if vr == "DA" else shift_datetime
            shifted = map_values(value, lambda v: shift(v, self.date_shift_days))
            if shifted is not None:
                return DataElement(tag, vr, shifted)
        attribute_type = job.retain.type_of(path)
        if attribute_type in TYPE_1:
            return DataElement(tag, vr, dummy_value(vr))
        if attribute_type in TYPE_2:
            return DataElement(tag, vr, empty_value_for_VR(vr))
        return None

    def _ae_title(self, value: str) -> str:
        return "AE" + keyed_token(self._key, self.copy_id, "ae-title", value.strip(), 14)

    def _is_safe_private(self, ds: Dataset, tag: BaseTag) -> bool:
        if not self._safe_private or self._actions.private != "C" or vr_of(ds.get_item(tag)) == "SQ":
            return False
        creator_tag = BaseTag((tag.group << 16) | (tag.element >> 8))
        if creator_tag not in ds:
            return False
        creator = str(ds[creator_tag].value).strip()
        return (creator, tag.group, tag.element & 0xFF) in self._safe_private

    # -- what every output carries --------------------------------------------------------------

    def _add_deidentification(self, out: Dataset, job: _Job) -> None:
        out.PatientID = job.pseudonym
        out.PatientName = job.pseudonym
        out.PatientIdentityRemoved = "YES"
        out.DeidentificationMethod = self.profile.describe()
        items = []
        for code, meaning in self.profile.method_codes():
            item = Dataset()
            item.CodeValue = code
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        out.DeidentificationMethodCodeSequence = Sequence(items)
        if job.retain.type_of(("LongitudinalTemporalInformationModified",)) is not None:
            if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in self.profile:
                out.LongitudinalTemporalInformationModified = "MODIFIED"
            elif Option.RETAIN_LONGITUDINAL_FULL_DATES in self.profile:
                out.LongitudinalTemporalInformationModified = "UNMODIFIED"
            else:
                out.LongitudinalTemporalInformationModified = "REMOVED"

    def _file_meta(self, ds: Dataset, out: Dataset) -> FileMetaDataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = out.SOPClassUID
        meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        meta.TransferSyntaxUID = _transfer_syntax(ds)
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        return meta


def _resolve_compound(action: str, attribute_type: str | None) -> str:
    """PS3.15 compound actions: the least that keeps the IOD valid at this attribute's path."""
    if "/" not in action:
        return action
    choices = action.split("/")
    if "U*" in choices:
        return "U"  # keep the references with their UIDs replaced: RT objects need them resolvable
    if attribute_type in TYPE_1 and "D" in choices:
        return "D"
    if attribute_type in TYPE_1 | TYPE_2:
        return "Z" if "Z" in choices else "D"
    return "X" if "X" in choices else choices[0]


def _check_acceptable(ds: Dataset) -> RetainList:
    sop_class = str(ds.get("SOPClassUID", "") or "").strip()
    retain = retain_list(sop_class)
    if retain is None:
        names = ", ".join(sorted(supported_sop_classes().values()))
        raise AnonymizationRefused(
            f"SOP class {sop_class or '(missing)'} is not one rtbank anonymises (supported: {names})"
        )
    if not str(ds.get("SOPInstanceUID", "") or "").strip():
        raise AnonymizationRefused(f"{retain.name} object has no SOP Instance UID")
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
        raise AnonymizationRefused(
            f"{retain.name} object has Burned In Annotation = YES: its pixels may show identifying text, "
            "which this profile does not clean; export it without burned-in annotation"
        )
    if ds.original_encoding[1] is False:
        raise AnonymizationRefused(f"{retain.name} object is big endian: convert it to little endian first")
    return retain


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", "") or "")) if meta is not None else UID("")
    if syntax and syntax != ExplicitVRBigEndian:
        return syntax
    implicit, _little = ds.original_encoding
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _copy_value(value: object) -> object:
    return list(value) if isinstance(value, MultiValue) else value
