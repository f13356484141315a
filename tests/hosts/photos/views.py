from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from tests.hosts.photos.models import Album


@login_required
def album(request, pk):
    album = get_object_or_404(Album, pk=pk, owner=request.user)
    return render(request, "photos/album.html", {"album": album, "photos": album.photos.all()})
