"""A local emulator of the PAI-DSW, ModelArts (notebooks, DevEnviron) and ROMA Connect APIs.

Served by `notebook-operator emulator`; the clouds' official SDKs work against it unchanged.
"""
