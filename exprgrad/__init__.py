"""exprgrad: cost functions as text -> operation graphs -> derivatives, values, drawings, fits."""

__version__ = "0.1.0"
