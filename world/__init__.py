"""Endless terrain: seamless, order-independent chunks with LODs, a manifest and a 3D Tiles tileset.

layout (indexing, paths, manifest, WorldSpec), inputs (input rasters: whole-file decisions once,
windowed reads), source (the seeded procedural world), view (what one chunk sees: inputs, procedural
world and the hand-over between them; who owns which object), chunk (one chunk, every LOD), surface
(surfaces seen from above: geometric errors), hlod (upper tiles), tileset (OGC 3D Tiles 1.1), run
(settings, ranges, scheduling, resume), dask_run (chunks as tasks on a Dask cluster).

Rules this package adds to the "world folder" contract of docs/conventions.md:
- Chunk (X, Y) covers [X·S, (X+1)·S) east and [Y·S, (Y+1)·S) north of the world origin (the inputs'
  south-west corner, or 0, 0); its GLB vertices are relative to its centre, a multiple of S/2 (so
  float32 offsets are exact).
- A chunk is a pure function of its manifest's settings (which hold the inputs' whole-file decisions
  and statistics) and (X, Y): every value is sampled at world positions through global grid indices.
- Terrain is a height field on the world grid (every 2·gsd metres from the origin), cut exactly at the
  chunk square; every LOD keeps the full-resolution border (simplified with the border locked). Border
  normals are the world height field's gradient; the terrain texture has a texel centre on each border
  texel line.
- Objects are never cut where they can be whole: procedural ones belong wholly to the chunk holding
  their anchor, input ones no wider than the overlap band (32 m) to the chunk holding their first cell;
  only input objects wider than the band are cut at chunk borders (see view). A cut object is meshed
  with CONTEXT_M (3 m) of it past the border, then trimmed at the border (core.convert.solids.Cut), so
  both chunks compute the same surface there; the finest LOD keeps those border vertices unsimplified.
- The manifest is the commit point: a chunk counts as made only once the manifest lists it with the
  SHA-256 of each LOD file; only the parent process writes, every file atomically.
- tileset.json's frame is the world's local frame (x east, y north, z up, metres from the origin;
  identity root transform, no ECEF); the origin's CRS position is in ``asset.extras.georeference`` and
  ``extras.georeference``. Each chunk is a chain coarsest LOD -> finest, ``refine: REPLACE``; above
  the chunks a quadtree of merged, simplified upper tiles (hlod: ``tiles/hlod/{L}/tile_x{X}_y{Y}.glb``,
  at most 4 children each) under a root without content. Geometric errors are measured (surface:
  vertical deviation from the finest, at least a texel), never grow from parent to child, and the
  root's (the world's size) always refines.
"""
