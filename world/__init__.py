"""Endless terrain: seamless, order-independent chunks with LODs, a manifest and a 3D Tiles tileset.

layout (indexing, paths, manifest), source (the procedural world), chunk (one chunk, every LOD),
tileset (OGC 3D Tiles 1.1), run (ranges, scheduling, resume).

Rules this package adds to the "Terrain chunks" contract of CONVENTIONS.md:
- Chunk (X, Y) covers [X·S, (X+1)·S) east and [Y·S, (Y+1)·S) north of the world origin; its GLB
  vertices are relative to its centre, a multiple of S/2 (so float32 offsets are exact).
- Terrain is a height field on the world grid (every 2·gsd metres from the origin), cut exactly at the
  chunk square; every LOD keeps the full-resolution border (simplified with the border locked). Border
  normals are the world height field's gradient; the terrain texture has a texel centre on each border
  texel line.
- Objects (buildings, trees) are never cut: each belongs wholly to the chunk holding its anchor
  (footprint north-west corner, crown centre) and may reach past the chunk square by up to the overlap
  band (32 m).
- The manifest is the commit point: a chunk counts as made only once the manifest lists it with the
  SHA-256 of each LOD file; only the parent process writes, every file atomically.
- tileset.json's frame is the world's local frame (x east, y north, z up, metres from the origin;
  identity root transform, no ECEF); the origin's CRS position is in ``asset.extras.georeference`` and
  ``extras.georeference``. Each chunk is a chain coarsest LOD -> finest, ``refine: REPLACE``, geometric
  error S/128·2^lod (0 at LOD 0).
- Only the procedural world exists so far: worlds over input rasters are refused with a one-line error.
"""
