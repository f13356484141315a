from django.contrib import admin

from similarity.admin import SimilarityAssetAdminMixin
from tests.hosts.photos.models import Album, Photo


@admin.register(Photo)
class PhotoAdmin(SimilarityAssetAdminMixin, admin.ModelAdmin):
    list_display = ["caption", "album", "embedding_status", "similar_link"]


admin.site.register(Album)
