"""SatForge core: satellite tiles in, textured meshes out. Never imports ``bpy``.

Pipeline stages, each a subpackage or module with one job:

    inputs      files -> Tile            (read, validate, co-register rasters)
    generators  Tile -> Scene            (sparse voxels + 2D Gaussian splats)
    convert     Scene -> [KindMesh]      (watertight mesh per surface kind, triangle budget)
    unwrap      [KindMesh] -> UV meshes  (charts + xatlas packing into one atlas)
    bake        Scene + UV meshes -> atlas image
    exporters   (top-level package) textured meshes -> GLB / glTF / OBJ
"""
