"""A user's risk state as the engine keeps it: the trader-set limits and the running totals.

One object per user so the order path does one lookup; the rules themselves live in risk/.
"""

from risk import rules

from .config import EngineConfig
from .pickling import restore_slots, slot_state


class UserRisk:
    __slots__ = ("limits", "windows", "velocity")
    __reduce__ = slot_state  # compiled (user_risk.pxd), pickled as the plain class it was
    __setstate__ = restore_slots

    def __init__(self, config: EngineConfig) -> None:
        self.limits: rules.UserLimits | None = None
        self.windows = rules.StakeWindows()
        self.velocity = (rules.Velocity(config.velocity_orders_max, config.velocity_window_ms)
                         if config.velocity_orders_max else None)

    def record(self, stake_minor: int, ts_ms: int) -> None:
        """Count an accepted order (denied ones never reach here)."""
        if self.velocity is not None:
            self.velocity.record(ts_ms)
        rules.record(self.windows, stake_minor, ts_ms)
