"""The host's own rule: an album's owner sees its photos."""

from similarity.host.access import AccessPolicy
from tests.hosts.photos.models import Album


class AlbumOwnerAccess(AccessPolicy):
    def visible_project_ids(self, user):
        if not user.is_authenticated:
            return set()
        return set(Album.objects.filter(owner=user).values_list("pk", flat=True))

    def can_edit(self, user, project_id):
        return self.can_view(user, project_id)
