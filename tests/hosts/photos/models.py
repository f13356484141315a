from django.conf import settings
from django.db import models


class Album(models.Model):
    title = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    def __str__(self) -> str:
        return self.title


class Photo(models.Model):
    album = models.ForeignKey(Album, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="photos")
    caption = models.CharField(max_length=200, blank=True)
    image = models.ImageField(upload_to="photos/")

    def __str__(self) -> str:
        return self.caption or f"photo {self.pk}"

    def get_absolute_url(self) -> str:
        return f"/photos/{self.pk}/"
