"""The host registers its own admins, knowing nothing of similarity's mixin."""

from django.contrib import admin

from tests.hosts.archive.models import Board, Folder, Library, Picture, Pin, Scan, Workspace


@admin.register(Picture)
class PictureAdmin(admin.ModelAdmin):
    list_display = ["title", "folder"]
    list_filter = ["folder__library"]


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["label", "workspace"]


@admin.register(Pin)
class PinAdmin(admin.ModelAdmin):
    list_display = ["code", "title", "board"]


admin.site.register([Library, Folder, Workspace, Board])
