"""Engine settings that decide outcomes. They travel with the engine (and its snapshots), so a
replay with the same commands takes the same decisions."""

from dataclasses import dataclass, fields

from pricing.quotes import DEFAULT_THRESHOLDS, Thresholds


@dataclass(frozen=True, slots=True)
class EngineConfig:
    velocity_orders_max: int = 20  # orders per user per rolling second (0 = no velocity limit)
    velocity_window_ms: int = 1_000
    # house liability cap used for quoting when a trader set none on the market
    house_default_liability_minor: int = 1_000_000
    # house BACK quotes this many ticks above its LAY quotes (0 = the house only lays)
    house_back_ticks: int = 0
    shading_thresholds: Thresholds = DEFAULT_THRESHOLDS
    # how long a bettor's raise (or removal) of one of their own limits waits before it applies
    self_limit_cooling_off_ms: int = 86_400_000

    def __setstate__(self, state: list) -> None:
        # a snapshot pickles the field values in order; one from before a field existed is
        # shorter, and the missing fields take their defaults
        for f, value in zip(fields(self), state):
            object.__setattr__(self, f.name, value)
        for f in fields(self)[len(state):]:
            object.__setattr__(self, f.name, f.default)
