# cython: language_level=3
"""The reply slot of an ask, compiled (twin of ``_ask_py``; same behaviour).

A :class:`ReplySlot` is the target behind an ask's reply ref: the first message told to it
completes ``future`` with that message; a message that arrives once the future is done (a
second reply, or one after the ask timed out) goes to ``late(message)``. It cannot be watched.
"""

__all__ = ["ReplySlot"]


cdef class ReplySlot:
    """Where an ask's reply goes: its future, or ``late`` once that is done."""

    cdef public object future
    cdef public object late

    is_local = True

    def __init__(self, future, late):
        self.future = future
        self.late = late

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
