"""Sat3DGen (ICLR 2026; code MIT, github.com/qianmingduowan/Sat3DGen; weights on the Hugging Face hub
``qian43/Sat3DGen``, the bundled DINOv3 backbone under Meta's DINOv3 License): density and colour in a
3D volume from one satellite image. ``model.py`` builds the network's 3D path (DINOv3 backbone, plane
decoder, density/colour MLP) from the published ``config.json`` + safetensors; ``volume.py`` turns an
image into feature planes, queries density and colour at points, and samples them on a grid
(coarse to fine, one 256 px window or a sliding window over larger images).
"""
