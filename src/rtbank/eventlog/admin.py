"""The event log in the Django admin: read-only, searchable (no patient data lives here)."""

from django.contrib import admin

from rtbank.eventlog.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("time", "service", "action", "outcome", "object_type", "object_id", "actor", "message")
    list_filter = ("service", "outcome", "action")
    search_fields = ("action", "actor", "object_id", "message")
    date_hierarchy = "time"

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False
