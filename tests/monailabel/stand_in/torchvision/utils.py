"""Stand-ins for the two functions monailabel imports; see the package docstring."""


def make_grid(*args, **kwargs):
    raise NotImplementedError("torchvision stand-in (test environment only): make_grid is not available")


def save_image(*args, **kwargs):
    raise NotImplementedError("torchvision stand-in (test environment only): save_image is not available")
