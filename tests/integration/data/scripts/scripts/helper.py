"""A dependency of consume.py, copied beside it and imported from there."""


def shout(text: str) -> str:
    return text.upper()
