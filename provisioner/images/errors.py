"""The one exception image building raises."""


class ImageBuildError(Exception):
    """The image could not be built; the message names the step and the reason."""
