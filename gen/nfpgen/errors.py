"""Schema errors that name the file and the key that is wrong."""


class SchemaError(Exception):
    """A problem in a schema file, reported as `file: key.path: message`."""

    def __init__(self, path, key, message):
        self.path = path
        self.key = key
        self.message = message
        super().__init__(f"{path}: {key}: {message}")
