"""Pure pricing: the odds ladder, odds formats, trader prices to house quotes, margin and shading.

All arithmetic is exact (int hundredths and `fractions.Fraction`); no float touches odds.
"""
