"""Images already in the .blend (e.g. a basemap BlenderGIS imported) as files the worker can read.

An image still backed by its unchanged file on disk is passed as that file: a GeoTIFF keeps its
georeference. Anything else (packed, generated, edited) is written to a temporary file from its
pixels: PNG for the orthophoto and land cover, float32 TIFF for heights (metres, unclamped).
"""

from pathlib import Path

import bpy
import numpy as np

from . import raster_files


def on_disk(image) -> Path | None:
    """The image's own file when it is loaded from disk unchanged, else None."""
    if image.source != "FILE" or image.packed_file is not None or image.is_dirty or not image.filepath:
        return None
    path = Path(bpy.path.abspath(image.filepath, library=image.library))
    return path if path.is_file() else None


def pixels(image) -> np.ndarray:
    """(H, W, C) float32, row 0 at the top (Blender stores the bottom row first)."""
    width, height = image.size
    if width == 0 or height == 0:
        raise ValueError(f"image {image.name!r} has no pixels (is its file missing?)")
    values = np.empty(width * height * image.channels, np.float32)
    image.pixels.foreach_get(values)
    return values.reshape(height, width, image.channels)[::-1]


def _bytes(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def image_file(image, role: str, folder: Path) -> Path:
    """A file for ``image`` used as input ``role`` (rgb, height, dtm, semantic)."""
    path = on_disk(image)
    if path is not None:
        return path
    data = pixels(image)
    stem = Path(folder) / f"{role}_{bpy.path.clean_name(image.name)}"
    if role in ("height", "dtm"):
        return raster_files.write(stem.with_suffix(".tif"), raster_files.tiff_float_bytes(data[:, :, 0]))
    colour = _bytes(data[:, :, :3]) if data.shape[2] >= 3 else _bytes(data[:, :, :1])
    if role == "semantic" and colour.shape[2] == 3 and (colour == colour[:, :, :1]).all():
        colour = colour[:, :, :1]  # a grey image of class ids: one band, as the reader expects
    return raster_files.write(stem.with_suffix(".png"), raster_files.png_bytes(colour))
