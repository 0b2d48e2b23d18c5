from django.contrib import admin

from rtbank.institutions.models import Institution, Node, UserProfile


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "created_at")
    search_fields = ("code", "name")


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("name", "ae_title", "host", "port", "institution", "roles")
    list_filter = ("institution",)
    search_fields = ("name", "ae_title", "host")


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "institution", "roles", "notify_mode")
    list_filter = ("institution",)
