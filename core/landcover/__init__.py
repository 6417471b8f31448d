"""Land cover and heights where the inputs do not give them: documented, seeded heuristics.

Neutral ground between the readers and the generators: any generator, and the world's view of its
inputs, may use them.

    classify  colour (and NIR, nDSM) -> class ids of a scheme
    priors    footprints -> seeded building and tree heights, woods' canopies
    noise     deterministic hash noise keyed by integer coordinates
"""
from .classify import classify, photo_on_grid
from .noise import hash_uniform, value_noise
from .priors import building_heights, first_cells, tree_heights, wood_heights

__all__ = ["building_heights", "classify", "first_cells", "hash_uniform", "photo_on_grid", "tree_heights",
           "value_noise", "wood_heights"]
