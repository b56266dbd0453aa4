"""Test-environment-only stand-in for torchvision (NOT a torchvision replacement).

monailabel 0.8.5 imports ``torchvision.utils.make_grid`` / ``save_image`` at load time (for DeepEdit
handlers and a debug image writer we never use), and no CPU build of torchvision exists for torch
2.13.0: PyPI's build fails to import next to the CPU torch. This folder is put first on PYTHONPATH of
the MONAI Label server started by tests/monailabel only, so the server can import; calling either
function raises.
"""

__version__ = "0.0.0+stand-in"
