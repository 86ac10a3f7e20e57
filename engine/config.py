"""Engine settings that decide outcomes. They travel with the engine (and its snapshots), so a
replay with the same commands takes the same decisions."""

from dataclasses import dataclass

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
