"""The one exception type the CLI turns into a single clear line and exit code 2."""


class LabError(Exception):
    """Bad input or a broken environment: unknown topology, unreadable file, config the
    proxy rejects, no Docker engine. The message is one line meant for the user as is."""
