"""Project tooling that never ships: content rendering, conf reading, lint."""
