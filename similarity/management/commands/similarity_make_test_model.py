"""Write a random-weight DINOv2 checkpoint for offline demos and tests (no download)."""

from django.core.management.base import BaseCommand

from similarity.testing import SMALL, TINY, make_dinov2_checkpoint


class Command(BaseCommand):
    help = (
        "Write a random-weight DINOv2 checkpoint to a folder, for machines without access "
        "to the Hugging Face hub. Its similarities are not meaningful like real DINOv2's."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder")
        parser.add_argument("--size", choices=["tiny", "small"], default="tiny")

    def handle(self, *args, folder, size, **options):
        path = make_dinov2_checkpoint(folder, size=TINY if size == "tiny" else SMALL)
        from similarity.conf import similarity_settings

        self.stdout.write(self.style.SUCCESS(
            f"Wrote {path}. Point {similarity_settings.MODEL_NAME_SOURCE} at it "
            f"(e.g. SIMILARITY = {{'MODEL_NAME': '{path}', ...}})."
        ))
