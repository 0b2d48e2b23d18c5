"""The viewer's URLs. ``/viewer/<UID>`` is the stable deep link (plan or structure set SOP Instance UID,
or a Series Instance UID); everything the page loads lives under it."""

from django.urls import path, register_converter

from rtbank.viewer import views


class UidConverter:
    regex = r"[0-9][0-9.]{0,63}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class ViewConverter:
    regex = "axial|sagittal|coronal"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UidConverter, "uid")
register_converter(ViewConverter, "view")

urlpatterns = [
    path("viewer/<uid:uid>", views.viewer_page, name="viewer"),
    path("viewer/<uid:uid>/", views.viewer_page, name="viewer_slash"),
    path("viewer/<uid:uid>/manifest.json", views.manifest, name="viewer_manifest"),
    path("viewer/<uid:uid>/image/<uid:series_uid>/<view:view>/<int:index>", views.image, name="viewer_image"),
    path("viewer/<uid:uid>/geometry/<view:view>/<int:index>", views.geometry, name="viewer_geometry"),
    path("viewer/<uid:uid>/dose/<view:view>/<int:index>", views.dose_plane, name="viewer_dose"),
    path("viewer/<uid:uid>/dose-at", views.dose_at, name="viewer_dose_at"),
    path("viewer/<uid:uid>/dvh.json", views.dvh, name="viewer_dvh"),
]
