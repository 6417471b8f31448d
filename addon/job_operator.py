"""What every worker-running operator shares: synchronous ``execute``, modal ``invoke``, reports.

``execute`` (scripts, ``--background``) runs the job to its end with :func:`jobs.run_sync`.
``invoke`` (a button in the UI) starts it and returns; a window timer then calls :meth:`modal`,
which steps the job, so Blender stays responsive. ESC or the panel's Cancel button ends it.
"""

import bpy

from . import jobs

TIMER_S = 0.1


class UserError(Exception):
    """A mistake in the operator's settings: reported as one line, nothing started."""


class WorkerOperator:
    """Mixin for bpy.types.Operator subclasses that implement ``make_job(context)``.

    ``make_job`` returns a :class:`jobs.Job`, or a message string when the work could be done
    without a worker (e.g. every chunk already on disk).
    """

    @classmethod
    def poll(cls, context):
        if jobs.active() is not None:
            cls.poll_message_set("A SatForge job is running (cancel it first)")
            return False
        return True

    def _prepare(self, context):
        """(the job to run, None), or (None, the operator's result) when there is no job: a user
        error, or a message saying nothing needed doing."""
        try:
            job = self.make_job(context)
        except UserError as exc:
            self.report({"ERROR"}, str(exc))
            return None, {"CANCELLED"}
        if isinstance(job, str):
            self.report({"INFO"}, job)
            return None, {"FINISHED"}
        return job, None

    def execute(self, context):
        job, result = self._prepare(context)
        if job is None:
            return result
        return self._report_end(job, jobs.run_sync(context, job, getattr(self, "timeout", 0.0)))

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        job, result = self._prepare(context)
        if job is None:
            return result
        job.start(context)
        if job.state != jobs.RUNNING:
            return self._report_end(job, job.state)
        self._job = job
        wm = context.window_manager
        job.timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        state = modal_step(context, self._job, event.type)
        if state is None:
            return {"PASS_THROUGH"}  # not our event: the rest of Blender keeps working
        if state == jobs.RUNNING:
            return {"RUNNING_MODAL"}
        jobs.remove_timer(context.window_manager, self._job)
        return self._report_end(self._job, state)

    def _report_end(self, job, state: str):
        if state == jobs.FINISHED:
            self.report({"INFO"}, job.message)
            return {"FINISHED"}
        self.report({"WARNING"} if state == jobs.CANCELLED else {"ERROR"}, job.message)
        return {"CANCELLED"}


def modal_step(context, job, event_type: str):
    """The modal handler's work for one event: None for events that are not ours, else the job's
    state after stepping it. Tests call this directly (the pip bpy module has no event loop)."""
    if event_type == "ESC":
        job.request_cancel()
    elif event_type != "TIMER":
        return None
    return job.step(context)
