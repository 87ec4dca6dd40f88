"""Uploads are hostile: real files made with Pillow/PyAV/zipfile, fed through iter_upload."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageFile

from vlmrm_core.frames import FrameRecord, Rejection
from vlmrm_core.sources.uploads import iter_paths, iter_upload, sniff_kind


def _frames(items: list) -> list[FrameRecord]:
    return [i for i in items if isinstance(i, FrameRecord)]


def _rejections(items: list) -> list[Rejection]:
    return [i for i in items if isinstance(i, Rejection)]


def _image_bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _gradient(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], -1).astype(
        np.uint8
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A fully valid 1-bit PNG of width×height zeros: ~50 KB compressed, 400 Mpx decoded."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + width // 8)  # filter byte + packed bits
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _write_video(path: Path, codec: str, n: int = 30, size: int = 64) -> None:
    """A moving white square on black, n frames."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n):
            img = np.zeros((size, size, 3), np.uint8)
            x = i * (size - 16) // max(n - 1, 1)
            img[24:40, x : x + 16] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize(
    ("fmt", "mode", "name"),
    [
        ("PNG", "RGB", "a.png"),
        ("JPEG", "RGB", "a.jpg"),
        ("WEBP", "RGB", "a.webp"),
        ("BMP", "RGB", "a.bmp"),
        ("PNG", "RGBA", "rgba.png"),
        ("PNG", "P", "pal.png"),
        ("PNG", "L", "grey.png"),
        ("PNG", "1", "bits.png"),
    ],
)
def test_images_in_any_mode_become_rgb(fmt: str, mode: str, name: str) -> None:
    img = Image.fromarray(_gradient()).convert(mode)
    items = list(iter_upload(name, _image_bytes(img, fmt)))
    assert len(items) == 1 and isinstance(items[0], FrameRecord), items
    frame = items[0]
    assert frame.pixels.shape == (24, 32, 3) and frame.pixels.dtype == np.uint8
    assert frame.source == "upload" and frame.name == name


def test_transparent_pixels_are_composited_over_white() -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black
    rgba[:4, :, :] = (255, 0, 0, 255)  # opaque red top half
    (frame,) = iter_upload("t.png", _image_bytes(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(frame.pixels[0, 0]) == (255, 0, 0)
    assert tuple(frame.pixels[7, 7]) == (255, 255, 255)


def test_16bit_greyscale_is_scaled_not_clipped() -> None:
    grey = np.array([[0, 32896, 65535]], dtype=np.uint16)
    data = _image_bytes(Image.fromarray(grey), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    (frame,) = iter_upload("deep.png", data)
    assert frame.pixels[0, :, 0].tolist() == [0, 128, 255]


def test_content_decides_not_extension() -> None:
    jpeg = _image_bytes(Image.fromarray(_gradient()), "JPEG")
    (frame,) = iter_upload("really_a_jpeg.png", jpeg)
    assert isinstance(frame, FrameRecord)
    assert sniff_kind(jpeg[:64]) == "jpeg"


def test_text_file_named_png_is_rejected_with_a_clear_reason() -> None:
    (rej,) = iter_upload("x.png", b"hello, I am just some notes\nnot a picture\n")
    assert isinstance(rej, Rejection) and rej.name == "x.png"
    assert rej.reason == (
        "x.png is not an image (looks like text); upload PNG, JPEG, WebP, BMP, GIF, "
        "a ZIP of images, or MP4/WebM video"
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_rejected(fmt: str) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = _image_bytes(Image.fromarray(noise), fmt)
    (rej,) = iter_upload("cut." + fmt.lower(), data[: len(data) // 2])
    assert isinstance(rej, Rejection)
    assert "truncated" in rej.reason


def test_unknown_binary_and_empty_files_are_rejected() -> None:
    (rej,) = iter_upload("blob.bin", bytes(range(256)) * 4)
    assert isinstance(rej, Rejection) and "not a supported" in rej.reason
    (rej,) = iter_upload("empty.png", b"")
    assert isinstance(rej, Rejection) and "empty" in rej.reason


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any pixel decoding fail the test: records (and refuses) every ``load()``."""
    calls: list[str] = []

    def refuse(self: ImageFile.ImageFile) -> None:
        calls.append(self.format or "?")
        raise AssertionError(f"decoded a {self.format} image that should have been refused")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    return calls


def test_decompression_bomb_is_rejected_from_the_header(no_decoding: list[str]) -> None:
    data = _bomb_png()
    assert len(data) < 200_000
    (rej,) = iter_upload("bomb.png", data)
    assert isinstance(rej, Rejection)
    assert "20000×20000" in rej.reason and "50,000,000" in rej.reason
    assert no_decoding == []


def test_memory_budget_is_the_backstop_above_the_pixel_cap(no_decoding: list[str]) -> None:
    # With the pixel cap lifted, the 400 Mpx bilevel image (1 byte per pixel in memory) still
    # ends in a Rejection naming the memory it would need, before any decoding.
    (rej,) = iter_upload("bomb.png", _bomb_png(), max_pixels=10**12)
    assert isinstance(rej, Rejection)
    assert "needs 381.5 MiB of memory to decode" in rej.reason and "256.0 MiB budget" in rej.reason
    assert no_decoding == []


def test_large_images_are_reduced_on_load_to_the_stored_size() -> None:
    pixels = np.repeat(np.repeat(_gradient(30, 40), 4, axis=0), 4, axis=1)  # 120×160
    for fmt in ("PNG", "JPEG", "WEBP"):
        data = _image_bytes(Image.fromarray(pixels), fmt)
        (frame,) = iter_upload(f"big.{fmt.lower()}", data, max_frame_pixels=40 * 30)
        assert isinstance(frame, FrameRecord), frame
        assert frame.pixels.shape == (30, 40, 3)  # reduced by 4, the smallest factor that fits
        assert frame.extra["downscaled_from"] == [160, 120]
        tolerance = 0 if fmt == "PNG" else 40
        assert np.abs(frame.pixels.astype(int) - _gradient(30, 40)).max() <= tolerance
    (small,) = iter_upload("small.png", _image_bytes(Image.fromarray(pixels), "PNG"))
    assert small.pixels.shape == (120, 160, 3) and "downscaled_from" not in small.extra


def _rgba_7000_png(path: Path) -> None:
    """The issue's crafted PNG: 7000×7000 RGBA (49 Mpx, under the pixel cap), ~200 KB."""
    rgba = np.zeros((7000, 7000, 4), np.uint8)
    rgba[:, :, 3] = 128
    rgba[::7, :, 0] = 255
    Image.fromarray(rgba, "RGBA").save(path, optimize=True)


_PEAK_SCRIPT = """
import io, os, resource, sys
from PIL import Image
from vlmrm_core.store.ingest import ingest_frames
from vlmrm_core.sources.uploads import iter_paths
from vlmrm_core.store import init_db
engine = init_db()
small = io.BytesIO()
Image.new("RGBA", (64, 64), (1, 2, 3, 4)).save(small, "PNG")
with open(os.path.join(sys.argv[2], "warm.png"), "wb") as f:
    f.write(small.getvalue())
ingest_frames(engine, "warm", iter_paths([f.name]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = ingest_frames(engine, "big", iter_paths([sys.argv[1]]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.imported, len(report.rejected), (after - before) // 1024)
"""


@pytest.mark.slow
def test_a_large_rgba_png_imports_in_bounded_memory(tmp_path: Path) -> None:
    """Peak memory of a whole import, in a fresh process (the high-water mark is per process).

    Decoding the image at full size and converting it in one piece (an RGBA copy, a white
    RGBA canvas, the composite, the RGB image, the array, a PNG of 49 Mpx) peaked 1.2 GB above
    the baseline; decoded within the budget and reduced on load strip by strip, ~300 MB.
    """
    import subprocess
    import sys

    image = tmp_path / "big.png"
    _rgba_7000_png(image)
    assert image.stat().st_size < 400_000
    env = {**os.environ, "VLMRM_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(image), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    imported, rejected, grown_mb = map(int, out.stdout.split())
    assert (imported, rejected) == (1, 0)
    assert grown_mb < 400, f"the import grew the peak memory by {grown_mb} MB"


def test_over_the_memory_budget_is_refused_with_the_fix() -> None:
    data = _image_bytes(Image.new("RGBA", (300, 200), (9, 9, 9, 9)), "PNG")
    (rej,) = iter_upload("wide.png", data, max_decode_bytes=200_000)
    assert isinstance(rej, Rejection)
    assert "wide.png (300×200, RGBA) needs 234.4 KiB" in rej.reason
    assert "downscale it" in rej.reason


def test_file_over_the_size_cap_is_rejected() -> None:
    data = _image_bytes(Image.fromarray(_gradient(64, 64)), "BMP")
    (rej,) = iter_upload("big.bmp", data, max_bytes=1000)
    assert isinstance(rej, Rejection) and "over the 1000 bytes upload cap" in rej.reason
    # The same check works on a file object without reading it.
    (rej,) = iter_upload("big.bmp", io.BytesIO(data), max_bytes=1000)
    assert isinstance(rej, Rejection)


def test_gif_frames_are_sampled_like_video() -> None:
    frames = [Image.new("RGB", (20, 20), (i * 20, 0, 0)) for i in range(10)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    items = list(iter_upload("anim.gif", buf.getvalue(), every_k=3, max_video_frames=3))
    assert [f.name for f in items] == ["anim.gif#0", "anim.gif#3", "anim.gif#6"]
    assert [int(f.pixels[0, 0, 0]) for f in items] == [0, 60, 120]


def test_zip_of_images_with_folders_and_hostile_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = _image_bytes(Image.fromarray(_gradient()), "PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("shots/", b"")  # a directory entry: skipped
        zf.writestr("shots/b.png", png)
        zf.writestr("a.png", png)
        zf.writestr("../evil.png", png)
        zf.writestr("/abs/evil2.png", png)
        zf.writestr("notes.txt", b"just text, not an image\n")
        zf.writestr("shots/bomb.png", _bomb_png())
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as izf:
            izf.writestr("c.png", png)
        zf.writestr("inner.zip", inner.getvalue())
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    monkeypatch.chdir(tmp_path)  # a naive extractor would write ../evil.png next to tmp_path
    items = list(iter_upload("up.zip", buf.getvalue()))
    names = [f.name for f in _frames(items)]
    # Entry names are display names, in sorted order, reported exactly as stored and relative
    # to the archive (as a folder's files are relative to the folder).
    assert names == ["../evil.png", "/abs/evil2.png", "a.png", "shots/b.png"]
    assert all(f.extra["archive"] == "up.zip" for f in _frames(items))
    reasons = {r.name: r.reason for r in _rejections(items)}
    assert "nested archives are not supported" in reasons["up.zip/inner.zip"]
    assert "looks like text" in reasons["up.zip/notes.txt"]
    assert "20000×20000" in reasons["up.zip/shots/bomb.png"]
    # Nothing was extracted anywhere.
    assert list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_empty_zip_says_it_has_no_images() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w"):
        pass
    (rej,) = iter_upload("empty.zip", buf.getvalue())
    assert isinstance(rej, Rejection) and "contains no images" in rej.reason


def test_zip_bomb_is_capped_by_bytes_actually_read() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", _image_bytes(Image.fromarray(_gradient()), "PNG"))
        zf.writestr("zeros.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 3_000_000)
    data = buf.getvalue()
    assert len(data) < 100_000
    items = list(iter_upload("bomb.zip", data, max_bytes=1_000_000))
    assert [f.name for f in _frames(items)] == ["a.png"]
    assert any("zip bomb" in r.reason for r in _rejections(items))


def test_video_is_streamed_and_sampled_every_k_with_a_cap(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, "libx264", n=30)
    seen: list[tuple[int, int | None]] = []
    with path.open("rb") as fh:
        items = list(
            iter_upload(
                "clip.mp4",
                fh,
                every_k=4,
                max_video_frames=5,
                progress=lambda d, t, m: seen.append((d, t)),
            )
        )
    frames = _frames(items)
    assert [f.name for f in frames] == [f"clip.mp4#{i}" for i in (0, 4, 8, 12, 16)]
    assert all(f.pixels.shape == (64, 64, 3) for f in frames)
    # The square moves right: its centre of mass in x increases frame to frame.
    xs = [float((f.pixels[..., 0] > 128).nonzero()[1].mean()) for f in frames]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 10
    assert seen[-1][0] == 5


def test_webm_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.webm"
    _write_video(path, "libvpx", n=6, size=32)
    frames = _frames(list(iter_upload("clip.webm", path.read_bytes())))
    assert [f.name for f in frames] == [f"clip.webm#{i}" for i in range(6)]


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",  # header only, no frames
        b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8,  # header then garbage
    ],
)
def test_video_without_decodable_frames_is_rejected(payload: bytes) -> None:
    items = list(iter_upload("broken.mp4", payload))
    assert len(items) == 1 and isinstance(items[0], Rejection)
    assert items[0].name == "broken.mp4"
    assert "video" in items[0].reason


def test_video_whose_frames_do_not_decode_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, "libx264", n=10, size=32)
    data = bytearray(path.read_bytes())
    # Keep the container (ftyp/moov) intact but wipe the compressed frames in mdat.
    at = data.index(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at - 4 + size] = bytes(size - 8)
    (rej,) = iter_upload("clip.mp4", bytes(data))
    assert isinstance(rej, Rejection)
    assert rej.reason.startswith("clip.mp4 has no decodable video frames")


def test_zero_length_video_is_rejected() -> None:
    (rej,) = iter_upload("nothing.mp4", b"")
    assert isinstance(rej, Rejection) and "nothing.mp4 is empty" in rej.reason


def test_iter_paths_names_frames_relative_to_what_was_imported_and_walks_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shots = Path("shots")
    (shots / "sub").mkdir(parents=True)
    Image.fromarray(_gradient()).save(shots / "b.png")
    Image.fromarray(_gradient()).save(shots / "sub" / "a.jpg")
    (shots / "readme.md").write_text("skipped: not an image extension")
    (shots / ".hidden.png").write_bytes(b"ignored: hidden")
    Image.fromarray(_gradient()).save("single.webp")
    _write_video(Path("v.mp4"), "libx264", n=3, size=32)
    items = list(iter_paths(["single.webp", "shots", "v.mp4", "missing.png"]))
    expected = ["single.webp", "b.png", "sub/a.jpg", "v.mp4#0", "v.mp4#1", "v.mp4#2"]
    assert [f.name for f in _frames(items)] == expected
    readme, missing = _rejections(items)
    assert missing.name == "missing.png" and "does not exist" in missing.reason
    assert readme.name == "readme.md" and "skipped it" in readme.reason
    # The same files typed another way (absolute paths, from inside the folder) get the same
    # names: they do not depend on how the path was typed.
    absolute = list(iter_paths([tmp_path / "single.webp", tmp_path / "shots", tmp_path / "v.mp4"]))
    assert [f.name for f in _frames(absolute)] == expected
    monkeypatch.chdir(shots)
    assert [f.name for f in _frames(list(iter_paths(["."])))] == ["b.png", "sub/a.jpg"]


def test_a_folder_import_reports_what_it_skipped_and_names_zip_entries_in_it(
    tmp_path: Path,
) -> None:
    png = _image_bytes(Image.fromarray(_gradient()), "PNG")
    (tmp_path / "sub").mkdir()
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "photo.dat").write_bytes(png)  # a PNG under another extension
    with zipfile.ZipFile(tmp_path / "sub" / "shots.zip", "w") as zf:
        zf.writestr("inside/c.png", png)
    direct = tmp_path / "direct.zip"
    direct.write_bytes((tmp_path / "sub" / "shots.zip").read_bytes())
    items = list(iter_paths([tmp_path / "sub", tmp_path / "notes.txt", direct]))
    assert [f.name for f in _frames(items)] == ["shots.zip/inside/c.png", "inside/c.png"]
    folder_items = list(iter_paths([tmp_path]))
    reasons = {r.name: r.reason for r in _rejections(folder_items)}
    assert set(reasons) == {"notes.txt", "photo.dat"}
    assert (
        reasons["notes.txt"]
        == "notes.txt is not an image, video or .zip file by its extension; skipped it"
    )
    assert "a png file without a png extension" in reasons["photo.dat"]


@pytest.mark.parametrize(
    ("fmt", "mode", "kw"),
    [
        ("PNG", "RGB", {}),
        ("JPEG", "RGB", {"exif": b""}),
        ("WEBP", "RGB", {}),  # lossy: VP8 chunk
        ("WEBP", "RGB", {"lossless": True}),  # VP8L chunk
        ("WEBP", "RGBA", {}),  # VP8X chunk
        ("BMP", "RGB", {}),
        ("GIF", "P", {}),
    ],
)
def test_size_comes_from_the_header_without_decoding(
    fmt: str, mode: str, kw: dict, no_decoding: list[str]
) -> None:
    # Pillow's lazy open reads the header only: the pixel cap is judged before any decoding.
    data = _image_bytes(Image.fromarray(_gradient(37, 53)).convert(mode), fmt, **kw)
    (rej,) = iter_upload("img", data, max_pixels=53 * 37 - 1)
    assert isinstance(rej, Rejection) and "53×37" in rej.reason
    assert no_decoding == []


def test_non_seekable_stream_is_read_up_to_the_cap() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b: bytearray) -> int:
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    png = _image_bytes(Image.fromarray(_gradient()), "PNG")
    (frame,) = iter_upload("piped.png", Pipe(png))
    assert isinstance(frame, FrameRecord)
    (rej,) = iter_upload("piped.png", Pipe(png), max_bytes=100)
    assert isinstance(rej, Rejection) and "upload cap" in rej.reason


_FIFO_SCRIPT = """
import json, sys
from vlmrm_core.frames import FrameRecord
from vlmrm_core.sources.uploads import iter_paths
from vlmrm_core.sources.uploads.files import _open_regular
from vlmrm_core.sources.uploads._common import Reject
out = [
    [type(i).__name__, i.name, getattr(i, "reason", "")]
    for i in iter_paths(sys.argv[1:])
]
try:
    _open_regular(sys.argv[2])  # a file swapped for a FIFO after the folder was listed
    out.append(["opened", sys.argv[2], ""])
except Reject as exc:
    out.append(["Reject", sys.argv[2], str(exc)])
print(json.dumps(out))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_named_pipes_are_skipped_never_read(tmp_path: Path) -> None:
    """A FIFO in a folder (or named directly) used to hang the import forever on open()."""
    import json
    import subprocess
    import sys

    folder = tmp_path / "shots"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_gradient()).save(folder / "a.png")
    os.mkfifo(folder / "pipe.png")
    os.mkfifo(folder / "sub" / "frames.zip")
    direct = tmp_path / "direct.mp4"
    os.mkfifo(direct)
    out = subprocess.run(
        [sys.executable, "-c", _FIFO_SCRIPT, str(folder), str(direct)],
        capture_output=True,
        text=True,
        timeout=60,  # a blocking open() would hang here: the test fails instead of the suite
    )
    assert out.returncode == 0, out.stderr[-2000:]
    items = {name: (kind, reason) for kind, name, reason in json.loads(out.stdout)}
    assert items["a.png"][0] == "FrameRecord"
    for fifo in ("pipe.png", "sub/frames.zip", "direct.mp4", str(direct)):
        kind, reason = items[fifo]
        assert kind in ("Rejection", "Reject") and "named pipe (FIFO)" in reason, items[fifo]
        assert "skipped" in reason


def test_large_zip_entries_spill_inside_the_data_dir_and_are_removed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vlmrm_core.sources.uploads import archives

    monkeypatch.setattr(archives, "_IN_MEMORY", 1_000)  # every entry here is larger
    spooled: list = []
    real_spool = archives._spool

    def recording_spool(*args: object) -> object:
        out = real_spool(*args)  # type: ignore[arg-type]
        spooled.append((out, os.readlink(f"/proc/self/fd/{out.fileno()}")))
        return out

    monkeypatch.setattr(archives, "_spool", recording_spool)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # incompressible: > 1,000 bytes
    png = _image_bytes(Image.fromarray(noise), "PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.png", png)
        zf.writestr("b.png", png)
    frames = _frames(list(iter_upload("up.zip", buf.getvalue())))
    assert [f.name for f in frames] == ["a.png", "b.png"]
    assert np.array_equal(frames[0].pixels, noise)
    assert len(spooled) == 2
    for out, where in spooled:
        assert where.startswith(str(data_dir) + os.sep), where  # not the system's /tmp
        assert out.closed  # closed once its frames were read: an unnamed file is gone with it
    leftovers = [p for p in data_dir.rglob("*") if p.is_file()]
    assert leftovers == []
