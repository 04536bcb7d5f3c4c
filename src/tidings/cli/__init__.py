"""Typer commands: wiring only. Every expected failure is one clear line, never a traceback."""
