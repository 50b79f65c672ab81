"""``casty.core.scheduler`` of casty 0.21: the scheduler actor and its messages."""

from __future__ import annotations

from casty.actors.scheduler import CancelSchedule, ScheduleOnce, SchedulerMsg, ScheduleTick, scheduler

__all__ = ["CancelSchedule", "ScheduleOnce", "ScheduleTick", "SchedulerMsg", "scheduler"]
