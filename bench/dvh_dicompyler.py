"""Run dicompyler-core 0.5.6 (default mode) on one RTSTRUCT + RTDOSE; print JSON. Runs in its own venv.

Used by ``bench/dvh.py``: dicompyler-core needs ``pydicom<3``, so it cannot share rtbank's environment.
Default mode = ``dvhcalc.get_dvh(structure, dose, roi)`` with every option at its default (dose voxel
centres, no interpolation, no end caps). Both files are parsed once, as a plan-level tool would.

usage: python bench/dvh_dicompyler.py RTSTRUCT RTDOSE [ROI_NUMBER ...]
"""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import pydicom  # noqa: E402  (pydicom 2 in this venv)
from dicompylercore import dicomparser, dvhcalc  # noqa: E402

STATISTICS = {"D99%": "D99", "D95%": "D95", "D50%": "D50", "D5%": "D5", "D1%": "D1", "D0.03cc": "D0.03cc"}


def main(argv: list[str]) -> int:
    rtstruct, rtdose, *wanted = argv
    start, cpu = time.perf_counter(), time.process_time()
    structure = pydicom.dcmread(rtstruct, force=True)  # get_dvh wraps datasets (or paths) itself
    dose = pydicom.dcmread(rtdose, force=True)
    rois = dicomparser.DicomParser(structure).GetStructures()
    numbers = [int(n) for n in wanted] or sorted(rois)
    parsed = time.perf_counter() - start
    out = {"parse_seconds": parsed, "rois": {}}
    for number in numbers:
        t0 = time.perf_counter()
        try:
            dvh = dvhcalc.get_dvh(structure, dose, number)
            seconds = time.perf_counter() - t0
            values = {
                "volume_cc": float(dvh.volume),
                "Dmin": float(dvh.min),
                "Dmean": float(dvh.mean),
                "Dmax": float(dvh.max),
            }
            for name, statistic in STATISTICS.items():
                values[name] = float(dvh.statistic(statistic).value)
            out["rois"][str(number)] = {"name": rois[number]["name"], "seconds": seconds, "metrics": values}
        except Exception as exc:  # noqa: BLE001 - report and go on, as a batch user would
            out["rois"][str(number)] = {
                "name": rois.get(number, {}).get("name", "?"),
                "seconds": time.perf_counter() - t0,
                "error": repr(exc),
            }
    out["total_seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = time.process_time() - cpu
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
