"""Passes: pure functions (IR, options, PDK) -> new IR. The order lives in ``pipeline.PASSES``."""
