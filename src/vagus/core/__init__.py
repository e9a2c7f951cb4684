"""The sans-I/O core: parsing, beat timeline, artifacts, metrics, spectrum, pipeline, events.

Nothing in this package imports anything but numpy, scipy and the standard library,
and nothing here does I/O, keeps a clock or touches asyncio: time arrives with the input.
"""
