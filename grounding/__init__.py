"""grounding: filled in by later issues."""
