"""Running the whole layer on one machine: ``troupe up`` and ``troupe tail``."""
