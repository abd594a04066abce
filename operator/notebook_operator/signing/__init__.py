"""Request signing of both clouds, shared by the provider clients (sign) and the emulator (verify).

Pure functions over (method, path, query, headers, body): no I/O, no HTTP library.
"""
