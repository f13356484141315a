"""A ZIP of the selected originals, streamed: never held whole in memory or on disk."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext_lazy

from similarity.actions.base import ActionFile, BulkAction
from similarity.actions.exports import export_name, file_names
from similarity.host.files import image_file


class _Sink(io.RawIOBase):
    """An unseekable file zipfile writes into; the generator hands out what it holds.

    zipfile notices ``tell()``/``seek()`` fail and writes data descriptors after each
    member instead of seeking back, so the archive is produced front to back and only
    one chunk is ever in memory.
    """

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


CHUNK = 256 * 1024


def stream_zip(entries: Iterable[tuple[str, Any]]) -> Iterator[bytes]:
    """Yield a ZIP archive of ``(name, field_file)`` pairs, chunk by chunk.

    Stored, not deflated: the originals are compressed images already. ZIP64 is forced
    per member because the size is not known before it is read.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            if isinstance(source, bytes):
                archive.writestr(info, source)
                yield sink.take()
                continue
            with source.open("rb") as handle, archive.open(info, "w", force_zip64=True) as out:
                while chunk := handle.read(CHUNK):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


class DownloadZipAction(BulkAction):
    name = "download-zip"
    label = gettext_lazy("Download ZIP")
    download = True

    def run(self, user, project_id, assets, params):
        names = file_names(assets)
        entries: list[tuple[str, Any]] = []
        missing: list[str] = []
        for asset in assets:
            source = image_file(asset)
            if source and source.storage.exists(source.name):
                entries.append((names[asset.pk], source))
            else:
                missing.append(names[asset.pk])
        if missing:  # said inside the archive: the download has started by then
            entries.append(("MISSING.txt", ("\n".join(missing) + "\n").encode()))
        return ActionFile(export_name(project_id, "zip"), "application/zip", stream_zip(entries))
