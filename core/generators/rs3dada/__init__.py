"""RS3DAda (SynRS3D, NeurIPS 2024; code and weights MIT, github.com/JTRNEO/SynRS3D): one network
that predicts a normalised DSM in metres and an 8-class OpenEarthMap land-cover map from one RGB
image. ``model.py`` builds it from a checkpoint, ``tiled.py`` runs the official tiled inference.
"""
