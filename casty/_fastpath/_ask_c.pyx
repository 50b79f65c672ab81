# cython: language_level=3
"""The reply slot of an ask, compiled (twin of ``_ask_py``; same behaviour).

A :class:`ReplySlot` is the target behind an ask's reply ref: the first message told to it
completes ``future`` with that message; a message that arrives once the future is done (a
second reply, or one after the ask timed out) goes to ``late(message)``. ``target`` is what the
ask was sent to (kept for whoever may fail the ask on its behalf). It cannot be watched.
"""

__all__ = ["ReplySlot"]

include "_source.pxi"


cdef class ReplySlot:
    """Where an ask's reply goes: its future, or ``late`` once that is done."""

    cdef public object future
    cdef public object late
    cdef public object target

    is_local = True

    def __init__(self, future, late, target=None):
        self.future = future
        self.late = late
        self.target = target

    def tell(self, msg):
        future = self.future
        if future.done():
            self.late(msg)
        else:
            future.set_result(msg)

    def add_watcher(self, watcher):
        return False  # a reply slot has no life of its own to watch

    def remove_watcher(self, watcher):
        return None
