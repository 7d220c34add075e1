"""A project function that tests register as a python capability."""


def text_length(text: str) -> int:
    """The number of characters in a text."""
    return len(text)
