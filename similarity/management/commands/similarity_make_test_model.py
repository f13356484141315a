"""Write a random-weight DINOv2 (or, with --text, SigLIP) checkpoint for offline demos and
tests (no download)."""

from django.core.management.base import BaseCommand

from similarity.testing import SMALL, TINY, make_dinov2_checkpoint, make_siglip_checkpoint


class Command(BaseCommand):
    help = (
        "Write a random-weight DINOv2 checkpoint to a folder, for machines without access "
        "to the Hugging Face hub; with --text, a random-weight SigLIP text-and-image model "
        "with a tokenizer built locally, for TEXT_MODEL_NAME. Their similarities are not "
        "meaningful like the real models'."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder")
        parser.add_argument("--size", choices=["tiny", "small"], default="tiny",
                            help="the DINOv2 model's size (ignored with --text)")
        parser.add_argument("--text", action="store_true",
                            help="write a SigLIP-architecture text model instead")

    def handle(self, *args, folder, size, text, **options):
        from similarity.conf import similarity_settings

        if text:
            path = make_siglip_checkpoint(folder)
            self.stdout.write(self.style.SUCCESS(
                f"Wrote {path}. Point {similarity_settings.TEXT_MODEL_NAME_SOURCE} at it "
                f"(e.g. SIMILARITY = {{'TEXT_MODEL_NAME': '{path}', ...}})."
            ))
            return
        path = make_dinov2_checkpoint(folder, size=TINY if size == "tiny" else SMALL)
        self.stdout.write(self.style.SUCCESS(
            f"Wrote {path}. Point {similarity_settings.MODEL_NAME_SOURCE} at it "
            f"(e.g. SIMILARITY = {{'MODEL_NAME': '{path}', ...}})."
        ))
