"""What a run needs: an estimate of its peak memory, checked before any work.

The figures are measured (``benchmarks/bench.py``, scaling section, CPU,
float32, 2026-11-23): the peak above the loaded model grows by about 2.2 kB
per pixel of the generated image (2258 MB at 1024x1024, 721 MB at 512x512)
on top of about 150 MB. Reduced-precision networks measured the same within
10%, since the image, its gradient, the Gram matrices and the optimizer
state stay float32. L-BFGS adds its history: two float32 rows of
3 * height * width values per kept pair, plus four more image-sized vectors.
"""

from .errors import NSTError

PER_PIXEL_BYTES = 2200
BASE_BYTES = 150 * 2**20
MODEL_BYTES = 80 * 2**20


def estimate_bytes(height, width, optimizer="adam", lbfgs_history=100):
    """Estimated peak resident memory, in bytes, of a run at ``height`` x ``width``."""
    pixels = height * width
    total = MODEL_BYTES + BASE_BYTES + PER_PIXEL_BYTES * pixels
    if optimizer == "lbfgs":
        total += (2 * lbfgs_history + 4) * 3 * pixels * 4
    return total


def available_bytes(path="/proc/meminfo"):
    """Memory available to a new process (Linux's MemAvailable), or None where unknown."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(height, width, optimizer="adam", lbfgs_history=100, available=None):
    """Raises ``NSTError`` with the estimate when a run at this size cannot fit in memory."""
    available = available_bytes() if available is None else available
    needed = estimate_bytes(height, width, optimizer, lbfgs_history)
    if available is not None and needed > available:
        what = f"{width}x{height}" + (f" with an L-BFGS history of {lbfgs_history}" if optimizer == "lbfgs" else "")
        raise NSTError(
            f"a run at {what} needs about {_gib(needed)} of memory; {_gib(available)} is available "
            "(use a smaller --width/--height/--max_size" + (" or --lbfgs_history)" if optimizer == "lbfgs" else ")")
        )


def _gib(n):
    return f"{n / 2**30:.1f} GiB"
