"""Work rows in the admin: see what is pending or failed, and resubmit failed rows."""

from django.contrib import admin, messages

from rtbank.work.models import WorkerHeartbeat, WorkItem, WorkState
from rtbank.work.services import resubmit


@admin.register(WorkItem)
class WorkItemAdmin(admin.ModelAdmin):
    list_display = (
        "kind",
        "key",
        "state",
        "attempts",
        "max_attempts",
        "not_before",
        "claimed_by",
        "updated_at",
        "short_error",
    )
    list_filter = ("state", "kind")
    search_fields = ("key", "last_error")
    readonly_fields = [f.name for f in WorkItem._meta.fields]
    actions = ["resubmit_failed"]

    @admin.display(description="last error")
    def short_error(self, obj: WorkItem) -> str:
        return obj.last_error[:80]

    @admin.action(description="Resubmit selected failed rows")
    def resubmit_failed(self, request, queryset):  # noqa: ANN001, ANN201
        n = sum(resubmit(pk) for pk in queryset.filter(state=WorkState.FAILED).values_list("pk", flat=True))
        self.message_user(request, f"{n} row(s) resubmitted", messages.SUCCESS)

    def has_add_permission(self, request):  # noqa: ANN001, ANN201
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("worker_id", "host", "pid", "started_at", "last_seen", "processed")
