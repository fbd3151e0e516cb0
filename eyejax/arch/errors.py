class ArchError(ValueError):
    """An architecture parameter outside its allowed range."""
