"""Clean-room torch networks that learned generators share, with the original parameter names.

    dinov2  the DINOv2 ViT/14 backbone (facebookresearch/dinov2): tokens of the last blocks
    dpt     the DPT dense-prediction head on those tokens (as SynRS3D's RS3DAda uses it)

Each network is built from a config that ``from_state_dict`` infers from a checkpoint's keys and
shapes, so published files load with ``load_state_dict(strict=True)`` and nothing assumes one size.
Plain torch only (no xFormers); the same code runs on CPU and CUDA.
"""
