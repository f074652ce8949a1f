"""gitops: arrives in a later issue (see DESIGN.md); importable so the layout is complete."""
