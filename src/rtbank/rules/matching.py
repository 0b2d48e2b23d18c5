"""Which stored objects a rule matches: SQL narrows, then each object's facts are tested exactly.

Used after analysis (one patient's objects), by the dry run (all stored objects the rule may see) and by
"apply to stored data". A project rule only ever sees objects from the project's participating
institutions or sent to the project's own AE title (:func:`eligible_q`) — rules are never a way in.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import pydicom
from django.db.models import Q, QuerySet

from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.indexing import audit_return_q
from rtbank.catalog.models import Instance, InstanceState, Roi
from rtbank.projects.models import Project
from rtbank.rules.conditions import Condition, Facts, parse
from rtbank.rules.models import AttributeValue, Rule
from rtbank.rules.paths import AttributePath

logger = logging.getLogger("rtbank.rules")
CHUNK = 2000
_FIELDS = (
    "pk",
    "kind",
    "sop_class_uid",
    "calling_ae",
    "called_ae",
    "blob_key",
    "institution__code",
    "series__modality",
    "series__study__date",
    "series__study__patient_id",
)


def eligible_q(project: Project) -> Q:
    """Objects a rule of ``project`` may match: from its institutions, or sent to its AE title."""
    q = Q(institution__in=project.institutions.all())
    if project.ae_title.strip():
        q |= Q(called_ae=project.ae_title.strip())
    return q


def candidates(
    rule: Rule, condition: Condition, base: QuerySet[Instance] | None = None
) -> QuerySet[Instance]:
    """Current objects the rule may see that pass the SQL form of its conditions."""
    qs = (base if base is not None else Instance.objects.all()).filter(
        state=InstanceState.CURRENT, series__isnull=False
    )
    qs = qs.exclude(audit_return_q("series__study__patient__"))  # returned audit data is not clinical data
    if rule.project_id is not None:
        qs = qs.filter(eligible_q(rule.project))
    narrowed = condition.to_q()
    if narrowed is not None:
        qs = qs.filter(narrowed)
    return qs.order_by("pk")


@dataclass
class Match:
    """An object that matched, with what the targets need."""

    instance_id: int
    patient_id: int
    kind: str


def matching(
    rule: Rule,
    base: QuerySet[Instance] | None = None,
    *,
    limit: int | None = None,
    reader: AttributeReader | None = None,
) -> tuple[list[Match], bool]:
    """The objects ``rule`` matches (within ``base``), and whether ``limit`` stopped the search early."""
    condition = parse(rule.conditions)
    reader = reader or AttributeReader(condition.attribute_paths())
    found: list[Match] = []
    seen = 0
    for facts in iter_facts(candidates(rule, condition, base), reader):
        seen += 1
        if limit is not None and seen > limit:
            return found, True
        if condition.matches(facts):
            found.append(Match(facts.instance_id, facts.patient_id, facts.kind))
    reader.flush()
    return found, False


def iter_facts(qs: QuerySet[Instance], reader: AttributeReader) -> Iterator[Facts]:
    """Facts of every object in ``qs``, loaded in chunks (a few queries per chunk, not per object)."""
    last = 0
    while True:
        rows = list(qs.filter(pk__gt=last).values_list(*_FIELDS)[:CHUNK])
        if not rows:
            return
        last = rows[-1][0]
        structure_sets = [r[0] for r in rows if r[1] == "structure_set"]
        rois: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for ss, name, count in Roi.objects.filter(structure_set_id__in=structure_sets).values_list(
            "structure_set_id", "name", "contour_count"
        ):
            rois[ss].append((name, count))
        reader.preload([r[0] for r in rows])
        for (
            pk,
            kind,
            sop_class,
            calling,
            called,
            blob_key,
            institution,
            modality,
            study_date,
            patient,
        ) in rows:
            yield Facts(
                pk,
                patient,
                kind,
                modality or "",
                sop_class,
                calling,
                called,
                institution or "",
                study_date,
                rois.get(pk, []),
                partial(reader.get, pk, blob_key),
            )
        reader.flush()


class AttributeReader:
    """Attribute values of stored objects: from the cache table, else read once from the file and cached.

    One file read serves every path of every rule being evaluated (``specific_tags``, no pixel data).
    """

    def __init__(self, paths: list[AttributePath]) -> None:
        self.paths = {str(p): p for p in paths}
        self.tags = sorted({p.top_tag for p in paths})
        self.memo: dict[tuple[int, str], tuple[bool, list[str]]] = {}
        self.pending: list[AttributeValue] = []

    def add_paths(self, paths: list[AttributePath]) -> None:
        for p in paths:
            self.paths.setdefault(str(p), p)
        self.tags = sorted({p.top_tag for p in self.paths.values()})

    def preload(self, instance_ids: list[int]) -> None:
        if not self.paths or not instance_ids:
            return
        cached = AttributeValue.objects.filter(instance_id__in=instance_ids, path__in=list(self.paths))
        for pk, path, present, values in cached.values_list("instance_id", "path", "present", "values"):
            self.memo[(pk, path)] = (present, values)

    def get(self, instance_id: int, blob_key: str, path: AttributePath) -> tuple[bool, list[str]]:
        key = (instance_id, str(path))
        if key not in self.memo:
            self._read(instance_id, blob_key)
        return self.memo.get(key, (False, []))

    def _read(self, instance_id: int, blob_key: str) -> None:
        try:
            with blob_store().open(blob_key) as f:
                ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=self.tags, force=True)
        except Exception as exc:  # noqa: BLE001 - an unreadable file matches no attribute condition
            logger.warning("rules: cannot read attributes of instance %s: %s", instance_id, exc)
            for name in self.paths:
                self.memo[(instance_id, name)] = (False, [])
            return
        for name, path in self.paths.items():
            if (instance_id, name) in self.memo:
                continue
            try:
                present, values = path.read(ds)
            except Exception as exc:  # noqa: BLE001 - a malformed element matches nothing
                logger.warning("rules: cannot read %s of instance %s: %s", name, instance_id, exc)
                present, values = False, []
            self.memo[(instance_id, name)] = (present, values)
            self.pending.append(
                AttributeValue(instance_id=instance_id, path=name, present=present, values=values)
            )

    def flush(self) -> None:
        if self.pending:
            AttributeValue.objects.bulk_create(self.pending, ignore_conflicts=True, batch_size=500)
            self.pending = []
