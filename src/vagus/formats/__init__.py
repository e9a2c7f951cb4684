"""File formats vagus reads and writes (RR text, and more import/export formats).

Each reader names the file's first bad line and the reason in a
:class:`vagus.exceptions.FileFormatError`; no unit is guessed from magnitudes.
"""
