from django.contrib import admin

from siyu.tenancy.models import ApiKey, AuditLog, Membership, Workspace

admin.site.register(Workspace)
admin.site.register(Membership)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "prefix", "created_at", "last_used_at", "revoked_at")
    exclude = ("key_hash",)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "workspace", "action", "target_type", "target_id")
