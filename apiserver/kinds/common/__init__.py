"""What several kinds share: meta and pod template facts, defaulting helpers, printers."""
