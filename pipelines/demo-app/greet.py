"""A tiny library the build pipeline tests and packages."""


def greet(name: str) -> str:
    return f"hello, {name}!"
