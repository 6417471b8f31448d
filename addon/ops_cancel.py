"""``bpy.ops.satforge.cancel``: the panel's Cancel button (ESC does the same in the modal run)."""

import bpy

from . import jobs


class SATFORGE_OT_cancel(bpy.types.Operator):
    """Stop the running SatForge worker; the scene stays as it was"""

    bl_idname = "satforge.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return jobs.active() is not None

    def execute(self, context):
        job = jobs.active()
        if job is not None:
            # Only flag it: the modal handler steps the job (and reports) on its next timer event.
            job.request_cancel()
        return {"FINISHED"}


CLASSES = (SATFORGE_OT_cancel,)
