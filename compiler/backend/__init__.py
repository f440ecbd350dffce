"""Back ends: lowered IR -> OutputPlan {relative path: bytes}."""
