"""Back ends: lowered IR -> files streamed into an OutputWriter (design/writer.py)."""
