"""Back ends: lowered IR -> files streamed into an OutputWriter (backend/plan.py)."""
