"""One step's dealings with the sources: associations under the politeness rules, queries cached in the
run's knowledge tables, inspection of small RT objects, and retrieval of what the walk wants.

A step runs outside any database transaction (DICOM operations can take minutes); everything it writes
here is idempotent (``ignore_conflicts`` inserts, state updates by UID), so a step killed half-way is
simply run again and asks the sources only what the run does not know yet.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from rtbank.catalog.models import Instance, InstanceState, Reference, StructureSet, TreatmentRecord
from rtbank.dicom import sop
from rtbank.dicom.keys import date as dicom_date
from rtbank.dicom.references import references
from rtbank.dicom.rtobjects import StructureSetInfo
from rtbank.dicom.sop import RtKind, rt_kind
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event
from rtbank.harvest import dimse, sources
from rtbank.harvest.models import HarvestObject, HarvestQuery, HarvestRun, HarvestSeries, ObjectState
from rtbank.ingest.importer import SpoolWriter
from rtbank.institutions.models import Node
from rtbank.projects.models import AccessLog

logger = logging.getLogger("rtbank.harvest")
IMAGE_MODALITIES = ("CT", "MR", "PT")
CATALOG = "catalog"
# Extra return keys per modality at image level: references a source may answer without a retrieve.
RETURN_KEYS: dict[str, dict[str, Any]] = {
    "RTRECORD": {"TreatmentDate": "", "ReferencedRTPlanSequence": []},
    "RTDOSE": {"ReferencedRTPlanSequence": [], "ReferencedStructureSetSequence": []},
    "RTPLAN": {"ReferencedStructureSetSequence": [], "ReferencedDoseSequence": []},
    # A registration's references live in these sequences; a source answering them spares reading the
    # object (step 7 looks at every registration of the patient: on a source without C-GET, reading them
    # would mean moving registrations of untreated plans into rtbank).
    "REG": {
        "RegistrationSequence": [],
        "DeformableRegistrationSequence": [],
        "ReferencedSeriesSequence": [],
        "StudiesContainingOtherReferencedInstancesSequence": [],
    },
}
REGISTRATION_SEQUENCES = ("RegistrationSequence", "DeformableRegistrationSequence")
# The kind an object has when the source does not return its SOP Class UID (Orthanc without storage access).
MODALITY_KIND = {
    "RTRECORD": "record",
    "RTPLAN": "plan",
    "RTDOSE": "dose",
    "RTSTRUCT": "structure_set",
    "REG": "registration",
    "CT": "image",
    "MR": "image",
    "PT": "image",
    "RTIMAGE": "rt_image",
}
SEQUENCE_REFS = {
    "ReferencedRTPlanSequence": "plan",
    "ReferencedStructureSetSequence": "structure_set",
    "ReferencedDoseSequence": "dose",
}


class Defer(Exception):
    """Not now (slot busy, outside the time window, waiting for the catalog): run again after ``seconds``."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


@dataclass
class Counters:
    objects: int = 0
    bytes: int = 0
    operations: int = 0


@dataclass
class _Open:
    conn: dimse.Connection
    slot: int
    cm: Any


@dataclass
class Session:
    run: HarvestRun
    holder: str
    step: str = ""
    on_progress: Any = None
    counters: Counters = field(default_factory=Counters)
    _open: dict[int, _Open] = field(default_factory=dict)
    _cache: dict[str, bytes] = field(default_factory=dict)
    _writer: dict[int, SpoolWriter] = field(default_factory=dict)
    _last_op: float = 0.0
    _renewed: float = field(default_factory=time.monotonic)

    # --- sources ------------------------------------------------------------------------------------
    @property
    def record_node(self) -> Node:
        return self.run.source

    def object_nodes(self) -> list[Node | str]:
        """Where plans, doses and images are looked for: ``--objects-from`` or the record source."""
        names = self.run.objects_from or [self.run.source.name]
        nodes: list[Node | str] = []
        for name in names:
            nodes.append(CATALOG if name == CATALOG else sources.harvest_node(name))
        return nodes

    def conn(self, node: Node) -> dimse.Connection:
        opened = self._open.get(node.pk)
        if opened is not None and opened.conn.assoc.is_established:
            self._pause(node)
            return opened.conn
        conf = sources.SourceSettings.of(node)
        if not conf.allowed_now():
            wait = (conf.next_allowed() - timezone.now()).total_seconds()
            raise Defer(max(1.0, wait), f"{node.name}: outside the allowed time windows")
        slot = (
            opened.slot
            if opened
            else sources.acquire_slot(node, self.holder, conf.parallel, settings.HARVEST_LEASE_S)
        )
        if slot is None:
            raise Defer(
                sources.slot_free_in(node), f"{node.name}: all {conf.parallel} association slot(s) busy"
            )
        peer = dimse.Peer(node.ae_title, node.host.split("/")[0], node.port, node.name)
        cm = dimse.connect(
            peer,
            calling_ae=settings.HARVEST_AE_TITLE,
            timeout=conf.timeout,
            with_get=conf.retrieve == "get" or conf.inspect_get,
            on_progress=self._tick,
        )
        try:
            conn = cm.__enter__()
        except BaseException:
            sources.release_slot(node, slot, self.holder, conf.pause_s)
            raise
        self._open[node.pk] = _Open(conn, slot, cm)
        return conn

    def close(self) -> None:
        for node_pk, opened in list(self._open.items()):
            try:
                opened.cm.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - closing never fails a step
                logger.debug("closing association failed", exc_info=True)
            node = Node.objects.get(pk=node_pk)
            sources.release_slot(node, opened.slot, self.holder, sources.SourceSettings.of(node).pause_s)
        self._open.clear()
        for writer in self._writer.values():
            writer.sync()

    def _pause(self, node: Node) -> None:
        pause = sources.SourceSettings.of(node).pause_s
        if pause:
            left = pause - (time.monotonic() - self._last_op)
            if left > 0:
                time.sleep(left)

    def _tick(self) -> None:
        if self.on_progress:
            self.on_progress()
        now = time.monotonic()
        if now - self._renewed > settings.HARVEST_LEASE_S / 3:
            self._renewed = now
            for node_pk, opened in self._open.items():
                sources.renew_slot(Node(pk=node_pk), opened.slot, self.holder, settings.HARVEST_LEASE_S)

    def _log(self, node: Node, action: str, details: dict[str, Any], outcome: str = Outcome.OK) -> None:
        self._last_op = time.monotonic()
        self.counters.operations += 1
        log_event(
            "harvest",
            action,
            actor=f"harvest:{self.run.pk}",
            outcome=outcome,
            object_type="harvest_run",
            object_id=self.run.pk,
            details={"node": node.name, "step": self.step, **details},
        )

    # --- queries ------------------------------------------------------------------------------------
    def find(self, node: Node, level: str, keys: dict[str, Any]) -> list[Any]:
        try:
            answers = self.conn(node).find(level, keys)
        except (dimse.Transient, dimse.QueryRefused) as exc:
            self._log(node, "c_find", {"level": level, "error": str(exc)[:300]}, Outcome.WARNING)
            raise
        self._log(node, "c_find", {"level": level, "answers": len(answers)})
        return answers

    def queried(self, key: str) -> bool:
        return HarvestQuery.objects.filter(run=self.run, key=key).exists()

    def mark_queried(self, key: str, answers: int) -> None:
        HarvestQuery.objects.bulk_create(
            [HarvestQuery(run=self.run, key=key, answers=answers)], ignore_conflicts=True
        )

    def inventory(self, patient: str, modality: str) -> list[HarvestObject]:
        """Every object of ``modality`` of ``patient`` at the object sources (queried once per run)."""
        for node in self.object_nodes():
            key = f"inv:{node if node == CATALOG else node.pk}:{modality}:{patient}"
            if self.queried(key):
                continue
            if node == CATALOG:
                n = self._catalog_inventory(patient, modality)
            else:
                series = self._series_rows(node, patient, modality)
                n = sum(len(self.list_series(s)) for s in series)
            self.mark_queried(key, n)
        return list(HarvestObject.objects.filter(run=self.run, patient_id=patient, modality=modality))

    def image_series(self, patient: str) -> list[HarvestSeries]:
        """The patient's CT/MR/PET series at the object sources, each with its frame of reference."""
        for node in self.object_nodes():
            for modality in IMAGE_MODALITIES:
                key = f"ser:{node if node == CATALOG else node.pk}:{modality}:{patient}"
                if self.queried(key):
                    continue
                if node == CATALOG:
                    self._catalog_inventory(patient, modality)
                    n = 0
                else:
                    n = len(self._series_rows(node, patient, modality))
                self.mark_queried(key, n)
        rows = list(
            HarvestSeries.objects.filter(run=self.run, patient_id=patient, modality__in=IMAGE_MODALITIES)
        )
        for row in rows:
            if not row.frame_uid:
                self._frame_of(row)
        return rows

    def _series_rows(self, node: Node, patient: str, modality: str) -> list[HarvestSeries]:
        answers = self.find(
            node,
            "SERIES",
            {
                "PatientID": patient,
                "Modality": modality,
                "StudyInstanceUID": "",
                "SeriesInstanceUID": "",
                "SeriesDate": "",
                "FrameOfReferenceUID": "",
            },
        )
        rows = [
            HarvestSeries(
                run=self.run,
                patient_id=patient,
                study_uid=str(a.get("StudyInstanceUID", "")),
                series_uid=str(a.get("SeriesInstanceUID", "")),
                modality=modality,
                frame_uid=str(a.get("FrameOfReferenceUID", "") or ""),
                series_date=dicom_date(a, "SeriesDate"),
                node=node,
            )
            for a in answers
            if a.get("SeriesInstanceUID")
        ]
        HarvestSeries.objects.bulk_create(rows, ignore_conflicts=True)
        uids = [r.series_uid for r in rows]
        return list(HarvestSeries.objects.filter(run=self.run, series_uid__in=uids))

    def list_series(self, series: HarvestSeries) -> list[HarvestObject]:
        """The instances of one series (image-level C-FIND within the series; hierarchical)."""
        if not series.listed and series.node is not None:
            keys: dict[str, Any] = {
                "StudyInstanceUID": series.study_uid,
                "SeriesInstanceUID": series.series_uid,
                "SOPInstanceUID": "",
                "InstanceNumber": "",
            }
            if series.modality in IMAGE_MODALITIES:
                # Images are only counted and skipped by UID: ask nothing a PACS must open each file for
                # (Orthanc with StorageAccessOnFind reads every instance for a key outside its index).
                if not series.frame_uid:
                    keys["FrameOfReferenceUID"] = ""
            else:
                keys.update(
                    {"SOPClassUID": "", "FrameOfReferenceUID": "", "Modality": ""},
                    **RETURN_KEYS.get(series.modality, {}),
                )
            try:
                answers = self.find(series.node, "IMAGE", keys)
            except dimse.QueryRefused:
                if series.modality not in RETURN_KEYS:
                    raise
                # Some SCPs refuse identifiers with sequence return keys: ask again without them.
                for extra in RETURN_KEYS[series.modality]:
                    keys.pop(extra, None)
                answers = self.find(series.node, "IMAGE", keys)
            self._store_answers(series, answers)
            HarvestSeries.objects.filter(pk=series.pk).update(listed=True)
            series.listed = True
        return list(
            HarvestObject.objects.filter(run=self.run, series_uid=series.series_uid).order_by(
                "instance_number", "id"
            )
        )

    def _store_answers(self, series: HarvestSeries, answers: list[Any]) -> None:
        wanted_seqs = [k for k in RETURN_KEYS.get(series.modality, {}) if k in SEQUENCE_REFS]
        # A source that returns a sequence for some answers returns it for all: absence then means "none".
        answered = {k for k in wanted_seqs if any(k in a and len(a.get(k) or []) for a in answers)}
        rows = []
        for a in answers:
            uid = str(a.get("SOPInstanceUID", "") or "")
            if not uid:
                continue
            sop_class = str(a.get("SOPClassUID", "") or "")
            refs: list[list[str]] | None = None
            dated = series.modality != "RTRECORD" or bool(a.get("TreatmentDate"))
            if series.modality == "REG":
                refs = _registration_refs(a)
            elif answered and dated:
                refs = [
                    [SEQUENCE_REFS[k], str(item.get("ReferencedSOPInstanceUID", ""))]
                    for k in answered
                    for item in (a.get(k) or [])
                    if item.get("ReferencedSOPInstanceUID")
                ]
            number = a.get("InstanceNumber")
            rows.append(
                HarvestObject(
                    run=self.run,
                    sop_instance_uid=uid,
                    patient_id=series.patient_id,
                    study_uid=series.study_uid,
                    series_uid=series.series_uid,
                    sop_class_uid=sop_class,
                    modality=series.modality,
                    kind=rt_kind(sop_class).value
                    if sop_class
                    else MODALITY_KIND.get(series.modality, "other"),
                    node=series.node,
                    refs=refs,
                    frame_uid=str(a.get("FrameOfReferenceUID", "") or "") or series.frame_uid,
                    instance_number=int(number) if number not in (None, "") else None,
                    treatment_date=dicom_date(a, "TreatmentDate") if "TreatmentDate" in a else None,
                )
            )
        HarvestObject.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        frames = {r.frame_uid for r in rows if r.frame_uid}
        if not series.frame_uid and len(frames) == 1:
            series.frame_uid = frames.pop()
            HarvestSeries.objects.filter(pk=series.pk).update(frame_uid=series.frame_uid)

    def _frame_of(self, series: HarvestSeries) -> str:
        """A series' frame of reference when the series answer lacked it: its instances, or one header."""
        objs = self.list_series(series)
        series.refresh_from_db()
        if series.frame_uid or not objs or series.node is None:
            return series.frame_uid
        first = objs[0]
        if sources.SourceSettings.of(series.node).inspect_get:
            data = self._get_one(first)
            if data is not None:
                frame = str(dimse.parse(data).get("FrameOfReferenceUID", "") or "")
                HarvestSeries.objects.filter(pk=series.pk).update(frame_uid=frame)
                HarvestObject.objects.filter(run=self.run, series_uid=series.series_uid).update(
                    frame_uid=frame
                )
                series.frame_uid = frame
        return series.frame_uid

    def _catalog_inventory(self, patient: str, modality: str) -> int:
        """Objects rtbank already holds count as a source (``--objects-from catalog``)."""
        rows = Instance.objects.filter(
            series__study__patient__patient_id=patient, series__modality=modality, state=InstanceState.CURRENT
        ).values_list(
            "sop_instance_uid",
            "sop_class_uid",
            "kind",
            "series__uid",
            "series__study__uid",
            "series__frame_of_reference_uid",
            "instance_number",
        )
        objs, series = [], {}
        for uid, sop_class, kind, series_uid, study_uid, frame, number in rows:
            objs.append(
                HarvestObject(
                    run=self.run,
                    sop_instance_uid=uid,
                    patient_id=patient,
                    study_uid=study_uid,
                    series_uid=series_uid,
                    sop_class_uid=sop_class,
                    modality=modality,
                    kind=kind,
                    frame_uid=frame or "",
                    instance_number=number,
                )
            )
            series[series_uid] = HarvestSeries(
                run=self.run,
                patient_id=patient,
                study_uid=study_uid,
                series_uid=series_uid,
                modality=modality,
                frame_uid=frame or "",
                listed=True,
            )
        HarvestSeries.objects.bulk_create(list(series.values()), ignore_conflicts=True)
        HarvestObject.objects.bulk_create(objs, ignore_conflicts=True, batch_size=500)
        return len(objs)

    # --- content of RT objects ------------------------------------------------------------------------
    def content(self, objs: Iterable[HarvestObject]) -> list[HarvestObject]:
        """Make sure each object's references are known: C-FIND answers, the catalog, or a header by C-GET."""
        objs = list(objs)
        unknown = [o for o in objs if not _known(o)]
        if unknown:
            self._from_catalog(unknown)
            unknown = [o for o in unknown if not _known(o)]
        by_series: dict[tuple[int | None, str], list[HarvestObject]] = defaultdict(list)
        for obj in unknown:
            by_series[(obj.node_id, obj.series_uid)].append(obj)
        waiting = []
        for (_, series_uid), group in by_series.items():
            node = group[0].node
            if node is None:
                continue
            if sources.SourceSettings.of(node).inspect_get:
                self._inspect_by_get(node, series_uid, group)
            else:
                waiting += group
        if waiting:
            # No C-GET at this source: retrieve into the catalog and read them there once filed.
            self.retrieve(waiting, reason="inspect")
            raise Defer(
                0.3, f"waiting for {len(waiting)} object(s) to be filed before reading their references"
            )
        return objs

    def _from_catalog(self, objs: list[HarvestObject]) -> None:
        uids = [o.sop_instance_uid for o in objs]
        current = dict(
            Instance.objects.filter(sop_instance_uid__in=uids, state=InstanceState.CURRENT).values_list(
                "sop_instance_uid", "pk"
            )
        )
        if not current:
            return
        refs: dict[str, list[list[str]]] = defaultdict(list)
        for source_uid, kind, target in Reference.objects.filter(source_id__in=current.values()).values_list(
            "source__sop_instance_uid", "kind", "target_uid"
        ):
            refs[source_uid].append([kind, target])
        firsts = dict(
            StructureSet.objects.filter(instance_id__in=current.values()).values_list(
                "instance__sop_instance_uid", "first_contour_image_uid"
            )
        )
        dates = dict(
            TreatmentRecord.objects.filter(instance_id__in=current.values()).values_list(
                "instance__sop_instance_uid", "treatment_date"
            )
        )
        for obj in objs:
            if obj.sop_instance_uid in current:
                obj.refs = refs.get(obj.sop_instance_uid, [])
                obj.first_contour_image = firsts.get(obj.sop_instance_uid, "") or ""
                obj.treatment_date = dates.get(obj.sop_instance_uid) or obj.treatment_date
                HarvestObject.objects.filter(pk=obj.pk).update(
                    refs=obj.refs,
                    first_contour_image=obj.first_contour_image,
                    treatment_date=obj.treatment_date,
                )

    def _inspect_by_get(self, node: Node, series_uid: str, group: list[HarvestObject]) -> None:
        whole = HarvestObject.objects.filter(run=self.run, series_uid=series_uid).count() == len(group)
        study = group[0].study_uid
        keys: dict[str, Any] = {"StudyInstanceUID": study, "SeriesInstanceUID": series_uid}
        if not whole:
            keys["SOPInstanceUID"] = (
                [o.sop_instance_uid for o in group] if len(group) > 1 else group[0].sop_instance_uid
            )
        try:
            result, received = self.conn(node).get("SERIES" if whole else "IMAGE", keys)
        except dimse.Transient as exc:
            self._log(node, "c_get", {"purpose": "inspect", "error": str(exc)[:300]}, Outcome.WARNING)
            raise
        self._log(node, "c_get", {"purpose": "inspect", "objects": len(received)})
        self._access(node, "harvest_inspect", len(received))
        by_uid = {o.sop_instance_uid: o for o in group}
        for data in received:
            ds = dimse.parse(data)
            obj = by_uid.get(str(ds.SOPInstanceUID))
            if obj is None:
                continue
            self._cache[obj.sop_instance_uid] = data
            _apply_header(obj, ds)
            HarvestObject.objects.filter(pk=obj.pk).update(
                refs=obj.refs,
                first_contour_image=obj.first_contour_image,
                treatment_date=obj.treatment_date,
                frame_uid=obj.frame_uid,
                kind=obj.kind,
                sop_class_uid=obj.sop_class_uid,
            )
        missing = [o.sop_instance_uid for o in group if not _known(o)]
        if missing:
            raise dimse.Transient(f"{node.name}: C-GET did not return {len(missing)} object(s) to inspect")

    def _get_one(self, obj: HarvestObject) -> bytes | None:
        if obj.sop_instance_uid in self._cache:
            return self._cache[obj.sop_instance_uid]
        assert obj.node is not None
        keys = {
            "StudyInstanceUID": obj.study_uid,
            "SeriesInstanceUID": obj.series_uid,
            "SOPInstanceUID": obj.sop_instance_uid,
        }
        _, received = self.conn(obj.node).get("IMAGE", keys)
        self._log(obj.node, "c_get", {"purpose": "inspect", "objects": len(received)})
        self._access(obj.node, "harvest_inspect", len(received))
        return received[0] if received else None

    # --- retrieval ------------------------------------------------------------------------------------
    def retrieve(self, objs: Iterable[HarvestObject], reason: str = "collect") -> int:
        """Collect ``objs`` into rtbank unless it holds them already (by UID) or this run fetched them."""
        objs = [o for o in objs]
        if not objs:
            return 0
        uids = [o.sop_instance_uid for o in objs]
        if reason == "collect":
            HarvestObject.objects.filter(run=self.run, sop_instance_uid__in=uids, wanted=False).update(
                wanted=True
            )
        current = Instance.objects.filter(sop_instance_uid__in=uids, state=InstanceState.CURRENT)
        arrivals = {
            uid: (node_id, received)
            for uid, node_id, received in current.values_list(
                "sop_instance_uid", "source_node_id", "received_at"
            )
        }
        held = set(arrivals)
        fetched = set(
            HarvestObject.objects.filter(
                run=self.run,
                sop_instance_uid__in=uids,
                state__in=(ObjectState.REQUESTED, ObjectState.COLLECTED),
            ).values_list("sop_instance_uid", flat=True)
        )
        # Filed from this source since the run started, but not recorded as requested: a step moved them and
        # was killed before it could say so. They are this run's retrievals (provenance), not held objects.
        unrecorded = held - fetched
        moved = [
            o
            for o in objs
            if o.sop_instance_uid in unrecorded
            and arrivals[o.sop_instance_uid][0] == o.node_id
            and arrivals[o.sop_instance_uid][1] >= self.run.created_at
        ]
        if moved:
            self._mark_requested(moved)
            fetched |= {o.sop_instance_uid for o in moved}
        if held - fetched:
            HarvestObject.objects.filter(
                run=self.run, sop_instance_uid__in=held - fetched, state=ObjectState.KNOWN
            ).update(state=ObjectState.HELD)
        todo = [o for o in objs if o.sop_instance_uid not in held and o.sop_instance_uid not in fetched]
        done = 0
        cached = [o for o in todo if o.sop_instance_uid in self._cache and o.node is not None]
        for obj in cached:
            self._spool(obj.node, self._cache[obj.sop_instance_uid])
        self._mark_requested(cached)
        done += len(cached)
        rest = [o for o in todo if o.sop_instance_uid not in self._cache and o.node is not None]
        groups: dict[tuple[int, str], list[HarvestObject]] = defaultdict(list)
        for obj in rest:
            groups[(obj.node_id, obj.series_uid)].append(obj)
        # One series failing (e.g. a source refusing RT Dose retrieves) must not keep the step from trying
        # the others: each group is tried, then the step fails (and is retried) for those that failed only.
        failures: list[str] = []
        for (_, series_uid), group in groups.items():
            try:
                done += self._retrieve_group(group[0].node, series_uid, group)
            except dimse.Unreachable:
                raise  # the source refuses associations: nothing else will get through now
            except dimse.Transient as exc:
                failures.append(str(exc))
        if failures:
            more = f" (and {len(failures) - 1} more series)" if len(failures) > 1 else ""
            raise dimse.Transient(failures[0] + more)
        return done

    def _retrieve_group(self, node: Node, series_uid: str, group: list[HarvestObject]) -> int:
        conf = sources.SourceSettings.of(node)
        total = HarvestObject.objects.filter(run=self.run, series_uid=series_uid).count()
        whole = total == len(group)
        keys: dict[str, Any] = {"StudyInstanceUID": group[0].study_uid, "SeriesInstanceUID": series_uid}
        level = "SERIES" if whole else "IMAGE"
        chunks = [group] if whole else [group[i : i + 200] for i in range(0, len(group), 200)]
        for chunk in chunks:
            if not whole:
                uids = [o.sop_instance_uid for o in chunk]
                keys["SOPInstanceUID"] = uids if len(uids) > 1 else uids[0]
            action = "c_get" if conf.retrieve == "get" else "c_move"
            try:
                if conf.retrieve == "get":
                    result, received = self.conn(node).get(level, keys)
                    for data in received:
                        self._spool(node, data)
                else:
                    result = self.conn(node).move(level, keys, conf.destination)
            except dimse.Transient as exc:
                self._log(
                    node,
                    action,
                    {"level": level.lower(), "objects": len(chunk), "error": str(exc)[:300]},
                    Outcome.WARNING,
                )
                self._access(node, "harvest_retrieve", len(chunk), outcome="error")
                raise
            if result.completed < len(chunk):
                self._log(
                    node,
                    action,
                    {"level": level.lower(), "objects": len(chunk), "completed": result.completed},
                    Outcome.WARNING,
                )
                raise dimse.Transient(
                    f"{node.name}: {action} returned {result.completed} of {len(chunk)} object(s)"
                )
            self._log(node, action, {"level": level.lower(), "objects": result.completed})
            self._access(node, "harvest_retrieve", result.completed)
            self._mark_requested(chunk)
        return len(group)

    def _spool(self, node: Node, data: bytes) -> None:
        writer = self._writer.get(node.pk)
        if writer is None:
            writer = SpoolWriter(
                {
                    "via": "harvest",
                    "institution": node.institution.code if node.institution else "",
                    "node_id": node.pk,
                    "calling_ae": node.ae_title,
                    "harvest_run": self.run.pk,
                    "source_node": node.name,
                }
            )
            self._writer[node.pk] = writer
        writer.add(data)
        self.counters.bytes += len(data)

    def _mark_requested(self, objs: list[HarvestObject]) -> None:
        if not objs:
            return
        for writer in self._writer.values():
            writer.sync()  # durable in the spool before the run counts them as fetched
        HarvestObject.objects.filter(
            run=self.run, sop_instance_uid__in=[o.sop_instance_uid for o in objs]
        ).update(state=ObjectState.REQUESTED, requested_at=timezone.now())
        self.counters.objects += len(objs)

    def _access(self, node: Node, action: str, count: int, outcome: str = "allowed") -> None:
        AccessLog.objects.create(
            actor=f"harvest:{self.run.pk}",
            action=action,
            object_type="harvest_run",
            object_id=str(self.run.pk),
            outcome=outcome,
            details={"node": node.name, "step": self.step, "objects": count},
        )


def _registration_refs(answer: Any) -> list[list[str]] | None:
    """A registration's references from a C-FIND answer carrying its sequences; ``None`` if not answered.

    Every registration has a (Deformable)RegistrationSequence, so an answer without one means the source
    does not return sequences, not that the registration references nothing.
    """
    if not any(len(answer.get(k) or []) for k in REGISTRATION_SEQUENCES):
        return None
    if not answer.get("SOPClassUID"):
        deformable = len(answer.get("DeformableRegistrationSequence") or [])
        answer.SOPClassUID = sop.DEFORMABLE_REGISTRATION if deformable else sop.SPATIAL_REGISTRATION
    return [[r.kind.value, r.target_uid] for r in references(answer)]


def _known(obj: HarvestObject) -> bool:
    return obj.refs is not None


def _apply_header(obj: HarvestObject, ds: Any) -> None:
    obj.refs = [[r.kind.value, r.target_uid] for r in references(ds)]
    obj.sop_class_uid = str(ds.get("SOPClassUID", "") or obj.sop_class_uid)
    kind = rt_kind(obj.sop_class_uid)
    obj.kind = kind.value if kind != RtKind.OTHER else obj.kind
    if kind == RtKind.STRUCTURE_SET:
        obj.first_contour_image = StructureSetInfo.from_dataset(ds).first_contour_image_uid or ""
    if "TreatmentDate" in ds:
        obj.treatment_date = dicom_date(ds, "TreatmentDate")
    if not obj.frame_uid:
        obj.frame_uid = str(ds.get("FrameOfReferenceUID", "") or "")


def as_date(value: str) -> dt.date:
    return dt.datetime.strptime(value, "%Y%m%d").date()  # noqa: DTZ007 - a calendar date
